"""What `surrogate-train plan validate`, `plan count` and `fit-many` do and show (cli.py
declares their options). While fit-many runs: a live table of the groups with a progress
bar on a terminal, one line per change otherwise (logs, CI, a pod); at the end, a
summary table. Exit codes: 0 all fine, 1 a group failed (or a plan check found
problems), 2 the plan or the registry cannot be used at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from training.fit_group import GroupOutcome, RegistryTarget
from training.fit_many import CompileDirs, fit_entries, usable_cores
from training.plan import Plan, PlanEntry, PlanFileError, load_plan, problems_of

# Wide enough that an error message is wrapped in its cell rather than cut off.
_LOG_WIDTH = 160


def make_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=_LOG_WIDTH)


def describe(outcome: GroupOutcome) -> str:
    if outcome.status == "registered":
        return (f"registered version {outcome.version} (fit {outcome.fit_time_s or 0:.1f} s, "
                f"{outcome.total_time_s or 0:.1f} s in all)")
    if outcome.status == "skipped":
        return f"skipped: {outcome.message}"
    return f"failed: {outcome.message}"


@dataclass
class _Row:
    label: str
    status: str = "waiting"
    started: float | None = None
    finished: float | None = None


class GroupsView:
    """Per-group status as the run goes: a live table on a terminal, lines otherwise."""

    def __init__(self, entries: list[PlanEntry], console: Console) -> None:
        self._console = console
        self._rows = {entry.index: _Row(entry.label) for entry in entries}
        self._live: Live | None = None
        if console.is_terminal:
            self._live = Live(console=console, get_renderable=self._render,
                              refresh_per_second=2)
            self._live.start()

    def status(self, index: int, status: str) -> None:
        row = self._rows[index]
        if row.finished is not None:  # a late status from a process that has finished
            return
        row.status = status.split(" (", 1)[0]  # the table keeps it short; lines say all
        if status == "starting":
            row.started = time.monotonic()
        self._line(row, status)

    def outcome(self, outcome: GroupOutcome) -> None:
        row = self._rows[outcome.index]
        row.status, row.finished = describe(outcome), time.monotonic()
        self._line(row, row.status)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()

    def _line(self, row: _Row, text: str) -> None:
        if self._live is None:
            self._console.print(f"{time.strftime('%H:%M:%S')} {row.label}: {text}",
                                highlight=False, soft_wrap=True)

    def _render(self) -> RenderableType:
        done = sum(row.finished is not None for row in self._rows.values())
        table = Table(title=f"fit-many: {done} of {len(self._rows)} groups done",
                      title_justify="left")
        table.add_column("group")
        table.add_column("status")
        table.add_column("time", justify="right")
        now = time.monotonic()
        for row in self._rows.values():
            elapsed = "" if row.started is None else f"{(row.finished or now) - row.started:.0f} s"
            table.add_row(row.label, row.status, elapsed)
        return Group(ProgressBar(total=len(self._rows), completed=done), table)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(outcomes: list[GroupOutcome]) -> Table:
    """One row per group: result, version, fit time, held-out metrics, or the error."""
    table = Table(title="fit-many summary", title_justify="left")
    for name, justify in (("#", "right"), ("group", "left"), ("result", "left"),
                          ("version", "right"), ("fit s", "right"), ("total s", "right"),
                          ("held-out NLPD", "right"), ("CRPS", "right"),
                          ("95% coverage", "right"), ("error / note", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for outcome in outcomes:
        held = outcome.held_out or {}
        table.add_row(str(outcome.index), outcome.name, outcome.status,
                      "-" if outcome.version is None else str(outcome.version),
                      _number(outcome.fit_time_s, 1), _number(outcome.total_time_s, 1),
                      _number(held.get("nlpd"), 3), _number(held.get("crps"), 4),
                      _number(held.get("coverage_95"), 3), outcome.message)
    return table


def _load(path: Path, fit: Callable[..., Any], console: Console) -> Plan | None:
    try:
        return load_plan(path, fit)
    except PlanFileError as exc:
        console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        return None


def validate(path: Path, fit: Callable[..., Any]) -> int:
    """`plan validate`: every problem of every entry, each naming the entry."""
    console = make_console()
    plan = _load(path, fit, console)
    if plan is None:
        return 2
    problems = [f"{entry.label}: {problem}" for entry in plan.entries
                for problem in problems_of(entry)]
    for problem in problems:
        console.print(f"error: {problem}", highlight=False, soft_wrap=True)
    if problems:
        return 1
    console.print(f"{path}: {len(plan.entries)} groups, no problems found", highlight=False)
    return 0


def count(path: Path, fit: Callable[..., Any]) -> int:
    """`plan count`: the number of groups, i.e. the Indexed Job's `completions`."""
    console = make_console()
    plan = _load(path, fit, console)
    if plan is None:
        return 2
    console.print(len(plan.entries))
    return 0


def _registry_problem(target: RegistryTarget) -> str | None:
    """Why a database target cannot be written (not migrated, unreachable), checked once
    rather than failing every group alike."""
    if target.register_url:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    from service.registry.db import SchemaNotAtHeadError, check_schema_at_head, make_engine

    engine = make_engine(target.database_url or "")
    try:
        check_schema_at_head(engine)
    except (SchemaNotAtHeadError, SQLAlchemyError) as exc:
        return str(exc)
    finally:
        engine.dispose()
    return None


def run(path: Path, fit: Callable[..., Any], *, index: int | None, workers: int | None,
        force: bool, compile_dir: Path, compile_seed: Path | None, database_url: str | None,
        register_url: str | None, token: str | None) -> int:
    """`fit-many`: the plan's groups (or entry `index` alone), then the summary."""
    if register_url and not token:
        make_console().print("error: --register-url needs --token (or SURROGATE_ADMIN_TOKEN)")
        return 2
    from service.settings import get_settings

    target = RegistryTarget(None if register_url else
                            database_url or get_settings().database_url, register_url, token)
    compile_dirs = CompileDirs(compile_dir, compile_seed)
    console = make_console()
    plan = _load(path, fit, console)
    problem = None if plan is None else _registry_problem(target)
    if plan is None or problem:
        if problem:
            console.print(f"error: {problem}", highlight=False, soft_wrap=True)
        return 2
    try:
        entries = list(plan.entries) if index is None else [plan.entry(index)]
    except PlanFileError as exc:
        console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        return 2
    view = GroupsView(entries, console)
    try:
        outcomes = fit_entries(entries, target, workers or usable_cores(), force,
                               compile_dirs, view.status, view.outcome)
    finally:
        view.close()
    console.print(summary_table(outcomes))
    return 1 if any(outcome.status == "failed" for outcome in outcomes) else 0
