"""Running `surrogate-train` in-process for tests: tiny fits and small synthetic groups."""

from __future__ import annotations

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
