"""The fit report: `surrogate-train fit --report DIR` writes the figures, the manifest
records them, the registry stores them with the version (served over HTTP), and every CLI
fit stores a report even without --report."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.artifact import Artifact, sha256_hex
from service.main import create_app
from service.settings import Settings
from tests.cli_helpers import CliFit, make_group_csv, runner
from training.cli import cli

FIGURES = {"fit.png", "sd.png", "calibration.png", "convergence.png", "curves.png",
           "conditioning.png"}


@pytest.fixture
def group_csv(tmp_path: Path) -> Path:
    return make_group_csv(tmp_path / "group.csv", 5, 12, 4)


@pytest.mark.xdist_group("tiny_cli_fit")
def test_fit_writes_report_figures_records_them_and_the_registry_serves_them(
    shared_tiny_fit: CliFit,
) -> None:
    report = shared_tiny_fit.report
    output = shared_tiny_fit.output
    assert f"report: {report}" in output
    assert {p.name for p in report.iterdir()} == FIGURES
    for png in report.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    manifest = Artifact.from_bytes(shared_tiny_fit.artifact.read_bytes()).manifest
    assert manifest["report"]["dir"] == str(report)
    recorded = {f["file"]: f["sha256"] for f in manifest["report"]["files"]}
    assert recorded == {p.name: sha256_hex(p.read_bytes()) for p in report.iterdir()}
    assert manifest["metrics"]["split"]["by"] == "group"
    assert manifest["metrics"]["held_out"]["rows"] == 72  # two folds: every material once
    assert "held-out (6 materials in 2 folds) NLPD" in output

    # Registered with the version (same transaction): any replica serves them.
    settings = Settings(database_url=shared_tiny_fit.database_url)
    with TestClient(create_app(settings)) as client:
        listed = client.get("/v1/models/rubber/versions/1/files").json()
        assert [f["path"] for f in listed] == sorted(f"report/{name}" for name in FIGURES)
        for entry in listed:
            png = report / entry["path"].removeprefix("report/")
            fetched = client.get(entry["url"])
            assert fetched.status_code == 200
            assert fetched.headers["content-type"] == "image/png"
            assert fetched.content == png.read_bytes()
            assert entry["sha256"] == recorded[png.name]


def test_fit_without_report_option_still_stores_a_report(
    group_csv: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["fit", str(group_csv), "--name", "rubber", "--method",
                                 "ensemble", "--members", "2", "--database-url",
                                 database_url, "--hidden", "3"])
    assert result.exit_code == 0, result.output
    folders = list((tmp_path / "var" / "reports" / "rubber").iterdir())
    assert len(folders) == 1
    assert {p.name for p in folders[0].iterdir()} == FIGURES
