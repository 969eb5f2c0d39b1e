"""The plan file of `surrogate-train fit-many`: many material groups, each fitted as
`surrogate-train fit` fits one.

    defaults: {x: strain, y: stress, group: material, alias: production}
    groups:
      - {name: rubber-a, csv: data/a.csv}
      - {name: rubber-b, csv: "https://files.lab.example/b.csv", members: 8}

An entry's keys are `fit`'s own parameter names (`x_unit`, or `x-unit` as on the command
line); `defaults` apply to every entry. The keys a plan accepts, their types and ranges
are read off the `fit` command itself (its signature and typer option info), so an option
added to `fit` is accepted in a plan with no change here. Where to register
(`database_url`, `register_url`, `token`) belongs to a run, not to a group: those are
fit-many's own options and a plan may not set them (a token in a plan would sit in a
file, or a ConfigMap, in clear). Paths (`csv`, `report`, ...) are relative to the plan
file; `csv` may also be an http(s) URL.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from typer.models import ParameterInfo

from service.errors import SurrogateError
from training.config import BNNConfig, config_from_fit_options
from training.data import CovariateColumn
from training.data_source import DataSourceError, is_url, read_header
from training.registration import check_names

RUN_OPTIONS = ("database_url", "register_url", "token")


class PlanFileError(ValueError):
    """The plan as a whole cannot be used (unreadable, not YAML, wrong structure)."""


@dataclass(frozen=True)
class FitParameter:
    """One parameter of `surrogate-train fit`, as a plan key."""

    name: str
    annotation: Any
    required: bool
    default: Any
    minimum: float | None
    maximum: float | None


def fit_parameters(fit: Callable[..., Any]) -> dict[str, FitParameter]:
    """The parameters of the typer command function `fit`, with their types, defaults and
    ranges (typer's `min`/`max`), in declaration order."""
    hints = typing.get_type_hints(fit, include_extras=True)
    found: dict[str, FitParameter] = {}
    for name, parameter in inspect.signature(fit).parameters.items():
        annotation = hints.get(name, Any)
        info = parameter.default if isinstance(parameter.default, ParameterInfo) else None
        if typing.get_origin(annotation) is Annotated:  # typer's Annotated[...] style
            base, *metadata = typing.get_args(annotation)
            info = info or next((m for m in metadata if isinstance(m, ParameterInfo)), None)
            annotation = base
        default = info.default if isinstance(parameter.default, ParameterInfo) else (
            parameter.default)
        required = default is ... or default is inspect.Parameter.empty
        found[name] = FitParameter(name, annotation, required, None if required else default,
                                   getattr(info, "min", None), getattr(info, "max", None))
    return found


def options_model(parameters: dict[str, FitParameter]) -> type[BaseModel]:
    """A pydantic model of a plan entry: every `fit` parameter but the run's own, with
    fit's types, defaults and ranges. Numbers are accepted where fit takes text
    (`hidden: 16`), since YAML reads them as numbers."""
    fields: dict[str, Any] = {}
    for parameter in parameters.values():
        if parameter.name in RUN_OPTIONS:
            continue
        # csv is a path on fit's command line; in a plan it may also be a URL.
        annotation = str if parameter.name == "csv" else parameter.annotation
        ranges = {key: value for key, value in (("ge", parameter.minimum),
                                                 ("le", parameter.maximum)) if value is not None}
        default = ... if parameter.required else parameter.default
        fields[parameter.name] = (annotation, Field(default, **ranges))
    config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    return create_model("FitOptions", __config__=config, **fields)


@dataclass(frozen=True)
class PlanEntry:
    """One group of the plan: its `fit` options (fit's defaults filled in, paths made
    absolute) or the problems that keep it from being fitted."""

    index: int
    name: str
    options: dict[str, Any]
    given: frozenset[str]  # the keys the plan set (entry or defaults)
    problems: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"entry {self.index} ({self.name})"


@dataclass(frozen=True)
class Plan:
    path: Path
    entries: tuple[PlanEntry, ...]

    def entry(self, index: int) -> PlanEntry:
        if not 0 <= index < len(self.entries):
            raise PlanFileError(f"{self.path} has {len(self.entries)} groups (indices 0 to "
                                f"{len(self.entries) - 1}); there is no entry {index}")
        return self.entries[index]


class _PlanDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: dict[str, Any] = Field(default_factory=dict)
    groups: list[dict[str, Any]] = Field(min_length=1)


def load_plan(path: Path, fit: Callable[..., Any]) -> Plan:
    """Read and check a plan without touching its data (`column_problems` reads the CSV
    headers). Raises PlanFileError when the file itself is unusable; an entry's own
    problems are kept with the entry, so the other entries can still be fitted."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise PlanFileError(f"cannot read plan {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PlanFileError(f"{path} is not valid YAML: {exc}") from exc
    try:
        document = _PlanDocument.model_validate(raw)
    except ValidationError as exc:
        raise PlanFileError(f"{path}: " + "; ".join(_messages(exc))) from exc
    parameters = fit_parameters(fit)
    model = options_model(parameters)
    folder = Path(path).resolve().parent
    entries = [_entry(index, raw_entry, document.defaults, parameters, model, folder)
               for index, raw_entry in enumerate(document.groups)]
    return Plan(Path(path), tuple(_with_duplicates_marked(entries)))


def _messages(error: ValidationError) -> list[str]:
    return [f"{'.'.join(str(part) for part in item['loc']) or 'plan'}: {item['msg']}"
            for item in error.errors()]


def _keys(values: dict[str, Any]) -> dict[str, Any]:
    """Keys as fit's parameter names: `x-unit` (the command-line spelling) is `x_unit`."""
    return {str(key).replace("-", "_"): value for key, value in values.items()}


def _entry(index: int, raw: dict[str, Any], defaults: dict[str, Any],
           parameters: dict[str, FitParameter], model: type[BaseModel],
           folder: Path) -> PlanEntry:
    own, inherited = _keys(raw), _keys(defaults)
    merged = {**inherited, **own}
    name = merged.get("name")
    problems = [_key_problem(key, "defaults: " if key not in own else "", parameters)
                for key in merged if key not in parameters or key in RUN_OPTIONS]
    values = {key: _as_list_if_listed(parameters[key], value) for key, value in merged.items()
              if key in parameters and key not in RUN_OPTIONS}
    options = _validated(model, values, problems)
    if options:
        options = _absolute_paths(options, parameters, folder)
    label = name if isinstance(name, str) and name else "?"
    return PlanEntry(index, label, options, frozenset(merged), tuple(problems))


def _validated(model: type[BaseModel], values: dict[str, Any],
               problems: list[str]) -> dict[str, Any]:
    """The entry's options, fit's defaults filled in, as fit would build its config from
    them; problems found are appended. With bad values, the options without them (so the
    data can still be checked), or {} when even those are unusable."""
    try:
        options = model.model_validate(values).model_dump()
    except ValidationError as exc:
        problems.extend(_messages(exc))
        bad = {item["loc"][0] for item in exc.errors() if item["loc"]}
        try:
            return model.model_validate({k: v for k, v in values.items()
                                         if k not in bad}).model_dump()
        except ValidationError:
            return {}
    try:  # what `fit` checks before it starts
        check_names(options["name"], options["alias"])
        fit_config(options)
        covariate_columns(options)
    except (ValueError, SurrogateError) as exc:
        problems.append(str(exc))
    return options


def _key_problem(key: str, origin: str, parameters: dict[str, FitParameter]) -> str:
    if key in RUN_OPTIONS:
        return (f"{origin}{key!r} belongs on the fit-many command line (--"
                f"{key.replace('_', '-')}), not in a plan")
    allowed = [name for name in parameters if name not in RUN_OPTIONS]
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]!r}?" if close else f" (fit's options: {allowed})"
    return f"{origin}unknown key {key!r}: not an option of surrogate-train fit{hint}"


def _as_list_if_listed(parameter: FitParameter, value: Any) -> Any:
    """One value where fit takes a repeatable option (`covariate: temperature:K`)."""
    listed = typing.get_origin(parameter.annotation) in (list, tuple)
    return [value] if listed and not isinstance(value, list | tuple) else value


def _is_path(annotation: Any) -> bool:
    return annotation is Path or Path in typing.get_args(annotation)


def _absolute_paths(options: dict[str, Any], parameters: dict[str, FitParameter],
                    folder: Path) -> dict[str, Any]:
    resolved = dict(options)
    for key, value in options.items():
        if key == "csv":  # text: a URL as it is, a path made absolute
            resolved[key] = value if is_url(value) else str(folder / value)
        elif value is not None and _is_path(parameters[key].annotation):
            resolved[key] = folder / value
    return resolved


def _with_duplicates_marked(entries: list[PlanEntry]) -> list[PlanEntry]:
    """Two entries with one name would both register versions of one model: refuse both."""
    by_name: dict[str, list[int]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry.index)
    marked = []
    for entry in entries:
        same = by_name[entry.name]
        if entry.name != "?" and len(same) > 1:
            problem = f"name {entry.name!r} is used by entries {same}; names must be unique"
            entry = PlanEntry(entry.index, entry.name, entry.options, entry.given,
                              (*entry.problems, problem))
        marked.append(entry)
    return marked


def fit_config(options: dict[str, Any]) -> BNNConfig:
    """The BNN config of an entry, built exactly as `fit` builds it from its options."""
    accepted = inspect.signature(config_from_fit_options).parameters
    return config_from_fit_options(**{key: options[key] for key in accepted})


def covariate_columns(options: dict[str, Any]) -> list[CovariateColumn]:
    """The entry's covariates (`covariate: [temperature:K, ...]`), parsed as `fit` parses
    `--covariate`; ValueError names a bad one."""
    return [CovariateColumn.parse(spec) for spec in options.get("covariate") or ()]


def named_columns(entry: PlanEntry) -> list[tuple[str, str]]:
    """(option, column) for every CSV column the entry names. The group column only when
    the plan names it: fit fits without groups when its default column is absent."""
    options = entry.options
    columns = [("x", options["x"]), ("y", options["y"])]
    if "group" in entry.given:
        columns.append(("group", options["group"]))
    try:
        columns += [("covariate", column.name) for column in covariate_columns(options)]
    except ValueError:  # already an entry problem
        pass
    return columns


def column_problems(entry: PlanEntry) -> list[str]:
    """Whether the entry's data can be read and has the columns it names (reads only the
    header line of the file or URL)."""
    source = entry.options["csv"]
    try:
        header = read_header(source)
    except DataSourceError as exc:
        return [str(exc)]
    return [f"column {column!r} ({option}) not in {source} (columns: {header})"
            for option, column in named_columns(entry) if column not in header]


def problems_of(entry: PlanEntry) -> list[str]:
    """Everything wrong with an entry: its options and (when they could be read) its data."""
    return [*entry.problems, *(column_problems(entry) if entry.options else [])]
