"""Running `surrogate-train` in-process for tests: tiny fits and small synthetic groups."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from training.cli import cli

runner = CliRunner()
# Options for a fit that takes seconds: enough to exercise every layer, not to converge;
# two held-out folds rather than five keep it at three fits.
TINY = ["--method", "advi", "--steps", "300", "--draws", "20", "--hidden", "4", "--folds", "2"]


def make_group_csv(path: Path, materials: int, points: int, seed: int) -> Path:
    """Write a synthetic Mooney-Rivlin group with `surrogate-train make-data`."""
    result = runner.invoke(cli, ["make-data", "--out", str(path), "--materials",
                                 str(materials), "--points", str(points), "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    return path


@dataclass(frozen=True)
class CliFit:
    """What one `surrogate-train fit` printed and wrote, and the registry it went into."""

    output: str
    artifact: Path
    report: Path
    database_url: str


def tiny_cli_fit(folder: Path, database_url: str) -> CliFit:
    """A TINY fit of a 6-material group (72 rows) with --report and --artifact-out,
    registered as version 1 of 'rubber' with alias production into `database_url`. Each of
    its 2 folds trains on 3 materials, the fewest a curve model is fitted to."""
    csv = make_group_csv(folder / "group.csv", 6, 12, 3)
    artifact, report = folder / "fit.npz", folder / "report"
    result = runner.invoke(cli, ["fit", str(csv), "--name", "rubber", "--alias", "production",
                                 "--report", str(report), "--database-url", database_url,
                                 "--artifact-out", str(artifact), *TINY])
    assert result.exit_code == 0, result.output
    return CliFit(result.output, artifact, report, database_url)
