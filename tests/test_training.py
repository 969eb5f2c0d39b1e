"""Real (tiny) PyMC fits: CSV -> fit -> registry -> HTTP predict."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.artifact import Artifact
from service.main import create_app
from service.settings import Settings
from tests.cli_helpers import TINY, CliFit, make_group_csv, runner
from training.cli import cli
from training.data import load_csv, make_mooney_rivlin_group
from training.model import BNNConfig
from training.pipeline import fit_data


@pytest.fixture(autouse=True)
def _reports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fit` writes its report under ./var/reports by default: keep it out of the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    return make_group_csv(tmp_path / "group.csv", 4, 12, 3)


def summary_of(diagnostics: dict, **spec_fields) -> str:
    from types import SimpleNamespace

    from training.cli import _fit_summary

    fields = {"diagnostics": diagnostics, "metrics": {}, "curve_model": None,
              "covariates": None, "data": None, "tested_conditions": None,
              "tested_strain_ranges": None,
              "training_domain": SimpleNamespace(min=-0.5, max=0.5),
              "inference": SimpleNamespace(method="bootstrap", wall_time_s=1.0)}
    return _fit_summary(SimpleNamespace(spec=SimpleNamespace(**{**fields, **spec_fields})))


def test_the_fit_summary_says_how_many_members_stopped_at_the_cap() -> None:
    capped = summary_of({"members": 16, "members_at_iteration_cap": 15, "converged": False})
    assert "16 members, 15 at the L-BFGS iteration cap" in capped
    assert "converged" not in capped
    assert "converged=True" in summary_of({"members": 16, "members_at_iteration_cap": 0,
                                           "converged": True})
    # Other methods have no members: their own convergence verdict.
    assert "converged=False" in summary_of({"converged": False})


def test_the_fit_summary_counts_a_covariate_models_curves_and_materials() -> None:
    from types import SimpleNamespace

    converged = {"converged": True}
    assert "curve model of 100 curves of 20 materials" in summary_of(
        converged, curve_model=SimpleNamespace(fit={"materials": 100}),
        covariates=[SimpleNamespace(name="temperature")], data={"groups": 20},
        tested_conditions=[[253.15]] * 5)
    assert "curve model of 40 materials" in summary_of(
        converged, curve_model=SimpleNamespace(fit={"materials": 40}), data={"groups": 40})


def test_the_fit_summary_says_where_strains_stop_short_and_curves_were_thinned() -> None:
    from types import SimpleNamespace

    summary = summary_of(
        {"converged": True, "network_rows": 8000}, data={"rows": 20000, "groups": 40},
        covariates=[SimpleNamespace(name="temperature")], tested_conditions=[[253.15]] * 3,
        tested_strain_ranges=[[-0.5, 0.5], [-0.5, 0.3], [-0.4, 0.5]])
    assert "at 3 tested conditions (2 of them tested over part of the strain range only)" \
        in summary
    assert "network fitted on 8,000 of 20,000 rows (dense curves thinned)" in summary
    assert "thinned" not in summary_of({"converged": True}, data={"rows": 2000})


def test_the_fit_summary_says_whether_the_scatter_was_widened() -> None:
    before = {"coverage": {"0.95": 0.538}}
    taken = {"factor": 3.857, "applied": True, "asked_factor": 3.857,
             "held_out_before": before, "held_out_after": {"coverage": {"0.95": 0.871}}}
    summary = summary_of({"converged": True}, metrics={"scatter_widening": taken})
    assert "scatter widened x3.86" in summary and "0.538 -> 0.871" in summary
    refused = {**taken, "factor": 1.0, "applied": False, "asked_factor": 1.827}
    summary = summary_of({"converged": True}, metrics={"scatter_widening": refused})
    assert "asked for a band x1.83 wider" in summary and "not widened" in summary
    calibrated = {**refused, "asked_factor": 1.0}
    assert "wide" not in summary_of({"converged": True},
                                    metrics={"scatter_widening": calibrated})


def test_make_data_scatter_is_larger_in_compression_than_in_tension() -> None:
    frame = make_mooney_rivlin_group(materials=40, points=50, seed=0)
    assert list(frame.columns) == ["strain", "stress", "material"]
    spread = frame.groupby("strain")["stress"].std()
    assert spread.iloc[0] > 3 * spread.iloc[-1]  # strain -0.5 vs +0.5
    assert frame["strain"].min() == pytest.approx(-0.5)
    assert frame["strain"].max() == pytest.approx(0.5)


@pytest.mark.xdist_group("tiny_cli_fit")
def test_cli_fit_registers_and_the_service_predicts_it(shared_tiny_fit: CliFit) -> None:
    assert "registered rubber version 1 as 'production'" in shared_tiny_fit.output

    manifest = Artifact.from_bytes(shared_tiny_fit.artifact.read_bytes()).manifest
    assert manifest["architecture"]["hidden_sizes"] == [4]
    assert manifest["data"]["rows"] == 72
    assert manifest["training_domain"] == {"min": -0.5, "max": 0.5}
    assert manifest["diagnostics"]["steps"] <= 300

    settings = Settings(database_url=shared_tiny_fit.database_url)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/models/rubber/predict",
                               json={"strain": [-0.4, 0.0, 0.4]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1
    for field in ("mean", "aleatoric_sd", "epistemic_sd", "total_sd"):
        assert np.all(np.isfinite(body[field])), field
    assert min(body["aleatoric_sd"]) > 0 and min(body["epistemic_sd"]) > 0


def test_homoskedastic_fit_has_constant_aleatoric_sd(small_csv: Path) -> None:
    config = BNNConfig().with_overrides(noise="homoskedastic", hidden_sizes=(4,),
                                        max_steps=300, draws=20)
    trained = fit_data(load_csv(small_csv), config, folds=1)
    assert np.all(trained.artifact.arrays["sigma_head.W"] == 0)
    from service.inference.posterior import Posterior

    aleatoric = Posterior(trained.artifact).predict(np.linspace(-0.5, 0.5, 5)).aleatoric_sd
    np.testing.assert_allclose(aleatoric, aleatoric[0])


def test_fit_refuses_missing_columns_with_a_clear_message(
    small_csv: Path, database_url: str
) -> None:
    result = runner.invoke(cli, ["fit", str(small_csv), "--name", "x", "--y", "force",
                                 "--database-url", database_url, *TINY])
    assert result.exit_code == 2
    assert "column 'force' not in" in result.output


@pytest.mark.parametrize(("options", "named"), [
    (["--draws", "100"], "--draws does not apply to --method bootstrap"),
    (["--method", "advi", "--members", "4"], "--members does not apply to --method advi"),
    (["--method", "ensemble", "--tune", "50"], "--tune does not apply to --method ensemble"),
])
def test_fit_refuses_options_the_method_would_ignore(
    small_csv: Path, database_url: str, options: list[str], named: str
) -> None:
    result = runner.invoke(cli, ["fit", str(small_csv), "--name", "x",
                                 "--database-url", database_url, *options])
    assert result.exit_code == 2
    assert named in result.output


def test_fit_refuses_non_numeric_rows(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"strain": [0.0, 0.1, "x", 0.3, 0.4],
                  "stress": [0, 1, 2, 3, 4]}).to_csv(path, index=False)
    result = runner.invoke(cli, ["fit", str(path), "--name", "x",
                                 "--database-url", database_url, *TINY])
    assert result.exit_code == 2
    assert "non-numeric" in result.output


def test_registering_into_an_unmigrated_database_names_the_fix(
    small_csv: Path, tmp_path: Path
) -> None:
    result = runner.invoke(cli, ["fit", str(small_csv), "--name", "x", "--database-url",
                                 f"sqlite:///{tmp_path / 'empty.db'}", *TINY])
    assert result.exit_code == 2
    assert "surrogate-serve migrate" in result.output


@pytest.mark.slow
def test_demo_fit_recovers_input_dependent_scatter(tmp_path: Path) -> None:
    """The point of the project: the aleatoric SD follows the data's per-strain scatter
    (here, >3x larger in compression than near zero strain), unlike the textbook BNN."""
    frame = make_mooney_rivlin_group(materials=40, points=50, seed=0)
    path = tmp_path / "demo.csv"
    frame.to_csv(path, index=False)
    config = BNNConfig().with_overrides(draws=200)
    # The served fit alone: held-out scores are not what this checks.
    trained = fit_data(load_csv(path), config, folds=0)
    from service.inference.posterior import Posterior

    strains = np.sort(frame["strain"].unique())
    aleatoric = Posterior(trained.artifact).predict(strains).aleatoric_sd
    empirical = frame.groupby("strain")["stress"].std().to_numpy()
    assert aleatoric.max() / aleatoric.min() >= 3
    relative_error = np.sqrt(np.mean((aleatoric / empirical - 1) ** 2))
    assert relative_error < 0.5, relative_error
