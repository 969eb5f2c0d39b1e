"""Plan files of `surrogate-train fit-many`, checked without fitting: every problem names
its entry, keys and types come from `fit` itself, data is read over real HTTP too."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from tests.cli_helpers import make_group_csv, runner
from tests.file_server import serve_folder
from training.cli import cli, fit
from training.fit_many import APPLIED_OPTIONS, fingerprint
from training.plan import RUN_OPTIONS, PlanFileError, fit_parameters, load_plan, problems_of


def write_plan(folder: Path, groups: list[dict[str, Any]],
               defaults: dict[str, Any] | None = None) -> Path:
    path = folder / "plan.yaml"
    document: dict[str, Any] = {"groups": groups}
    if defaults is not None:
        document["defaults"] = defaults
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_group_csv(tmp_path / "a.csv", materials=3, points=5, seed=0)


def validate(plan: Path) -> tuple[int, str]:
    result = runner.invoke(cli, ["plan", "validate", str(plan)])
    return result.exit_code, result.output


def test_a_sound_plan_passes_and_is_counted(tmp_path: Path, data: Path) -> None:
    plan = write_plan(tmp_path, [{"name": "a", "csv": "a.csv", "members": 8},
                                 {"name": "b", "csv": str(data), "x-unit": "mm"}],
                      defaults={"alias": "production", "hidden": 8, "group": "material"})
    code, output = validate(plan)
    assert code == 0, output
    assert "2 groups, no problems found" in output
    counted = runner.invoke(cli, ["plan", "count", str(plan)])
    assert counted.exit_code == 0 and counted.output.strip() == "2"
    entry = load_plan(plan, fit).entries[1]
    assert entry.options["x_unit"] == "mm" and entry.options["hidden"] == "8"
    assert entry.options["csv"] == str(data)
    # fit's own defaults fill what the plan leaves out
    assert entry.options["holdout"] == 0.2 and entry.options["y"] == "stress"


@pytest.mark.parametrize(("entry", "expected"), [
    ({"name": "b", "csv": "a.csv", "memebrs": 4},
     "entry 1 (b): unknown key 'memebrs': not an option of surrogate-train fit; "
     "did you mean 'members'?"),
    ({"name": "b", "csv": "a.csv", "token": "secret"},
     "entry 1 (b): 'token' belongs on the fit-many command line (--token), not in a plan"),
    ({"name": "b", "csv": "a.csv", "members": 1},
     "entry 1 (b): members: Input should be greater than or equal to 2"),
    ({"name": "b", "csv": "a.csv", "holdout": "lots"},
     "entry 1 (b): holdout: Input should be a valid number"),
    ({"name": "b", "csv": "a.csv", "draws": 50},
     "entry 1 (b): --draws does not apply to --method bootstrap"),
    ({"name": "b", "csv": "a.csv", "method": "magic"},
     "entry 1 (b): method must be one of"),
    ({"name": "b", "csv": "a.csv", "hidden": "8,x"},
     "entry 1 (b): --hidden must be comma-separated integers, got '8,x'"),
    ({"name": "b", "csv": "missing.csv"},
     "entry 1 (b): cannot read"),
    ({"name": "b", "csv": "a.csv", "y": "force"},
     "entry 1 (b): column 'force' (y) not in"),
    ({"name": "b", "csv": "a.csv", "group": "batch"},
     "entry 1 (b): column 'batch' (group) not in"),
    ({"name": "b", "csv": "a.csv", "alias": "9lives"},
     "entry 1 (b): alias '9lives' is not allowed: use letters"),
    ({"name": "b c", "csv": "a.csv"}, "entry 1 (b c): name 'b c' is not allowed"),
    ({"csv": "a.csv"}, "entry 1 (?): name: Field required"),
    ({"name": "b"}, "entry 1 (b): csv: Field required"),
    ({"name": "a", "csv": "a.csv"},
     "entry 1 (a): name 'a' is used by entries [0, 1]; names must be unique"),
])
def test_each_problem_names_its_entry(tmp_path: Path, data: Path, entry: dict[str, Any],
                                      expected: str) -> None:
    plan = write_plan(tmp_path, [{"name": "a", "csv": "a.csv"}, entry])
    code, output = validate(plan)
    assert code == 1
    assert expected in output, output
    if "used by entries" not in expected:
        assert "entry 0" not in output  # the sound entry is not blamed


def test_every_problem_of_an_entry_is_reported_at_once(tmp_path: Path, data: Path) -> None:
    plan = write_plan(tmp_path, [{"name": "b", "csv": "a.csv", "colour": "red",
                                  "members": 1, "y": "force"}],
                      defaults={"database_url": "sqlite:///x.db"})
    code, output = validate(plan)
    assert code == 1
    for part in ("unknown key 'colour'", "defaults: 'database_url' belongs on the fit-many",
                 "members: Input should be", "column 'force' (y)"):
        assert part in output, (part, output)


@pytest.mark.parametrize(("text", "expected"), [
    ("groups: [", "is not valid YAML"),
    ("defaults: {x: strain}\n", "groups: Field required"),
    ("groups: []\n", "groups: List should have at least 1 item"),
    ("groups: [{name: a, csv: a.csv}]\nextra: 1\n", "extra: Extra inputs are not permitted"),
    ("groups: [rubber]\n", "groups.0: Input should be a valid dictionary"),
])
def test_a_plan_file_that_cannot_be_used_at_all(tmp_path: Path, text: str,
                                                expected: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    code, output = validate(plan)
    assert code == 2
    assert expected in output, output


def test_an_unreadable_plan_is_named(tmp_path: Path) -> None:
    code, output = validate(tmp_path / "nowhere.yaml")
    assert code == 2 and "cannot read plan" in output


def fit_with_one_more_option() -> Any:
    """`fit` as it would be with one more option, `--replicates N` (at least 1)."""

    def extended(**options: Any) -> None:
        """Stands in for a fit that has gained an option."""

    signature = inspect.signature(fit)
    replicates = inspect.Parameter("replicates", inspect.Parameter.KEYWORD_ONLY,
                                   default=typer.Option(1, min=1), annotation=int)
    extended.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), replicates])
    extended.__annotations__ = {**typing.get_type_hints(fit), "replicates": int}
    return extended


def test_keys_come_from_the_fit_command_itself(tmp_path: Path, data: Path) -> None:
    """An option added to fit is a plan key with fit's type, default and range, with no
    change to the plan code; the real fit, without it, refuses the key."""
    plan = write_plan(tmp_path, [{"name": "a", "csv": "a.csv", "replicates": 3},
                                 {"name": "b", "csv": "a.csv", "replicates": 0},
                                 {"name": "c", "csv": "a.csv"}])
    a, b, c = load_plan(plan, fit_with_one_more_option()).entries
    assert a.options["replicates"] == 3 and problems_of(a) == []
    assert problems_of(b) == ["replicates: Input should be greater than or equal to 1"]
    assert c.options["replicates"] == 1
    assert "unknown key 'replicates'" in load_plan(plan, fit).entries[0].problems[0]


def test_covariates_are_checked_as_fit_parses_them(tmp_path: Path, data: Path) -> None:
    plan = write_plan(tmp_path, [{"name": "a", "csv": "a.csv", "covariate": "material:1"},
                                 {"name": "b", "csv": "a.csv",
                                  "covariate": ["temperature:K"]},
                                 {"name": "c", "csv": "a.csv", "covariate": "9lives"}])
    a, b, c = load_plan(plan, fit).entries
    assert a.options["covariate"] == ["material:1"] and problems_of(a) == []
    assert problems_of(b) == [f"column 'temperature' (covariate) not in {data} "
                              "(columns: ['strain', 'stress', 'material'])"]
    assert "--covariate '9lives': the name must start with a letter" in problems_of(c)[0]


def test_every_fit_option_is_applied_by_fit_many_or_belongs_to_the_run() -> None:
    """An option `fit` gains must be wired into fit-many's fit (training/fit_group.py)."""
    assert set(fit_parameters(fit)) == set(APPLIED_OPTIONS) | set(RUN_OPTIONS)


def test_the_fingerprint_ignores_locations_and_unset_options() -> None:
    options = {"name": "a", "csv": "/x/a.csv", "report": "/r", "members": 8, "method": None}
    moved = {**options, "csv": "/y/a.csv", "report": "/s", "covariate": []}
    assert fingerprint(options, "d" * 64) == fingerprint(moved, "d" * 64)
    assert fingerprint(options, "d" * 64) != fingerprint({**options, "members": 4}, "d" * 64)
    assert fingerprint(options, "d" * 64) != fingerprint(options, "e" * 64)


def test_an_index_outside_the_plan_is_refused(tmp_path: Path, data: Path) -> None:
    plan = write_plan(tmp_path, [{"name": "a", "csv": "a.csv"}])
    with pytest.raises(PlanFileError, match="has 1 groups .indices 0 to 0.; there is no entry 3"):
        load_plan(plan, fit).entry(3)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    with serve_folder(tmp_path) as url:
        yield url


def test_data_at_a_url_is_checked_by_its_header(tmp_path: Path, data: Path,
                                                file_server: str) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    plan = write_plan(plans, [{"name": "a", "csv": f"{file_server}/a.csv"},
                              {"name": "b", "csv": f"{file_server}/a.csv", "x": "stretch"},
                              {"name": "c", "csv": f"{file_server}/gone.csv"}])
    code, output = validate(plan)
    assert code == 1
    assert "entry 0" not in output
    assert "entry 1 (b): column 'stretch' (x) not in" in output
    assert f"entry 2 (c): cannot read {file_server}/gone.csv: HTTP 404" in output
