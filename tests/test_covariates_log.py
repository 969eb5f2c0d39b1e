"""Covariates read on a log scale (`--covariate rate:1/s[:log|:linear]`): the option, the
automatic choice for values spanning decades, the CSV and request errors for values <= 0,
the manifest (transform "log", schema version 2 only then), and a tiny real fit whose
network reads ln(rate) at training and at serving alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.artifact import Artifact
from service.inference.curves_across import ConditionKernel
from service.manifest import (
    EXTRAPOLATION_SCHEMA_VERSION,
    LOG_COVARIATES_SCHEMA_VERSION,
    Manifest,
)
from service.registry.writes import register
from training.covariate_data import make_covariate_group
from training.data import CovariateColumn, load_csv
from training.model import BNNConfig
from training.pipeline import fit_csv

RATES = (1e-3, 1e-2, 1e-1)


def test_the_option_takes_an_optional_scale() -> None:
    assert CovariateColumn.parse("rate:1/s:log") == CovariateColumn("rate", "1/s", "log")
    assert CovariateColumn.parse("rate:1/s:Linear") == CovariateColumn("rate", "1/s",
                                                                       "linear")
    assert CovariateColumn.parse("rate::log") == CovariateColumn("rate", "1", "log")
    assert CovariateColumn.parse("rate:1/s") == CovariateColumn("rate", "1/s", None)
    with pytest.raises(ValueError, match=r"the scale must be one of \['log', 'linear'\]"):
        CovariateColumn.parse("rate:1/s:decades")


def test_values_over_two_decades_and_all_positive_are_read_on_a_log_scale() -> None:
    auto = CovariateColumn("rate", "1/s")
    assert auto.reads_log(np.array(RATES))
    assert not auto.reads_log(np.array([253.15, 353.15]))  # a temperature in K
    assert not auto.reads_log(np.array([0.0, 0.1, 0.3]))  # a filler fraction with 0
    assert not auto.reads_log(np.array([0.01, 0.3]))  # a factor of 30
    assert not CovariateColumn("rate", "1/s", "linear").reads_log(np.array(RATES))
    assert CovariateColumn("t", "K", "log").reads_log(np.array([253.15, 353.15]))


def test_a_log_column_with_a_value_not_above_zero_names_the_column_and_line(
        tmp_path: Path) -> None:
    path = tmp_path / "group.csv"
    path.write_text("strain,stress,material,rate\n0.1,0.2,0,0.01\n0.2,0.4,0,0\n"
                    "0.1,0.2,1,0.1\n0.2,0.4,1,0.1\n")
    with pytest.raises(ValueError, match=r"covariate column 'rate' of .*, line 3 \(data "
                                         r"row 2\): 0 cannot be read on a log scale"):
        load_csv(path, covariates=[CovariateColumn("rate", "1/s", "log")])
    assert load_csv(path, covariates=[CovariateColumn("rate", "1/s")]).covariates is not None


def test_the_manifest_wants_positive_values_and_schema_version_2_for_a_log_scale() -> None:
    from tests.test_curves_across import across_artifact

    manifest = across_artifact().manifest
    covariate = manifest["covariates"][0]
    covariate["transform"] = "log"
    with pytest.raises(ValidationError, match="need schema_version 2"):
        Manifest.model_validate(manifest)
    manifest["schema_version"] = LOG_COVARIATES_SCHEMA_VERSION
    assert Manifest.model_validate(manifest).covariates[0].transform == "log"
    covariate["min"] = 0.0
    with pytest.raises(ValidationError, match="needs values > 0"):
        Manifest.model_validate(manifest)


def test_a_kernel_over_a_log_covariate_measures_in_ln_units() -> None:
    at = np.array([[1e-3], [1e-2], [1.0]])
    on_log = ConditionKernel(length_scales=np.array([2.0]), log=(True,))
    plain = ConditionKernel(length_scales=np.array([2.0]))
    np.testing.assert_allclose(on_log.correlation(at, at, 0.9),
                               plain.correlation(np.log(at), np.log(at), 0.9), rtol=1e-12)
    slopes = ConditionKernel(slope_scales=np.array([1.5]), slope_centre=np.array([-4.0]),
                             log=(True,))
    plain_slopes = ConditionKernel(slope_scales=np.array([1.5]),
                                   slope_centre=np.array([-4.0]))
    np.testing.assert_allclose(slopes.correlation(at, at, 0.9),
                               plain_slopes.correlation(np.log(at), np.log(at), 0.9),
                               rtol=1e-12)


@pytest.fixture(scope="module")
def rate_fits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Artifact]:
    folder = tmp_path_factory.mktemp("log-rate")
    frame = make_covariate_group(materials=6, points=12, seed=3, temperatures=(296.15,),
                                 rates=RATES)
    path = folder / "group.csv"
    frame.to_csv(path, index=False)
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=3, seed=1)
    return {scale: fit_csv(path, config, holdout=0.0, folds=0, covariates=[
        CovariateColumn("rate", "1/s", None if scale == "auto" else scale)]).artifact
        for scale in ("auto", "linear")}


def test_the_fit_reads_the_rate_on_a_log_scale_unless_told_otherwise(rate_fits) -> None:
    auto, linear = rate_fits["auto"].spec, rate_fits["linear"].spec
    assert auto.covariates[0].transform == "log"
    # Every covariate fit records its level changes (version 3, which includes 2).
    assert auto.schema_version == EXTRAPOLATION_SCHEMA_VERSION
    # mean and scale are those of ln(rate): three rates a decade apart, equally often.
    assert auto.covariates[0].mean == pytest.approx(np.log(1e-2), rel=1e-9)
    assert auto.covariates[0].scale == pytest.approx(np.log(10) * np.sqrt(2 / 3), rel=1e-9)
    assert (auto.covariates[0].min, auto.covariates[0].max) == (1e-3, 1e-1)
    assert linear.covariates[0].transform is None
    assert linear.schema_version == EXTRAPOLATION_SCHEMA_VERSION
    assert "transform" not in rate_fits["linear"].manifest["covariates"][0]
    # The middle rate is the middle of the network's input on a log scale, near the
    # bottom on a linear one.
    from service.inference.posterior import Posterior

    on_log = Posterior(rate_fits["auto"]).conditions
    on_line = Posterior(rate_fits["linear"]).conditions
    assert on_log is not None and on_line is not None
    np.testing.assert_allclose(on_log.normalise(np.array([[1e-2]])), [[0.0]], atol=1e-12)
    assert on_line.normalise(np.array([[1e-2]]))[0, 0] < -0.5


def test_a_rate_not_above_zero_is_a_422_and_the_page_names_the_scale(rate_fits, session: Session,
                                                        client: TestClient) -> None:
    register(session, "rated", rate_fits["auto"].to_bytes(), actor="test")
    session.commit()
    url = "/v1/models/rated/predict"
    ok = client.post(url, json={"strain": [0.1, 0.2], "covariates": {"rate": 0.01}})
    assert ok.status_code == 200, ok.text
    for covariates, field in (({"rate": 0.0}, "covariates.rate"),
                              ({"rate": [0.01, -1.0]}, "covariates.rate[1]")):
        response = client.post(url, json={"strain": [0.1, 0.2], "covariates": covariates})
        assert response.status_code == 422, response.text
        assert field in response.text and "log scale" in response.text
    export = client.get("/v1/models/rated/export", params={"covariates": "rate:0"})
    assert export.status_code == 422 and "covariates.rate" in export.text
    # The version page says so beside the covariate.
    page = client.get("/ui/models/rated/versions/1").text
    row = page.split('<tr data-covariate="rate">')[1].split("</tr>")[0]
    assert 'data-col="scale"' in row and "(log scale)" in row


def test_the_report_draws_a_log_covariate_on_its_own_scale(rate_fits, tmp_path: Path
                                                           ) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from service.inference.posterior import Posterior
    from training.report_covariates import curve_values, figures, sweep_values

    values, tested = curve_values(np.array(RATES), log=True)
    # Halfway is the geometric mean; a quarter of the range beyond either end stays > 0.
    assert np.all(values > 0) and tested.sum() == 3
    np.testing.assert_allclose(values[tested.argmax() + 1], np.sqrt(1e-3 * 1e-2), rtol=1e-12)
    sweep = sweep_values(np.array(RATES), log=True)
    assert sweep.min() == pytest.approx(1e-4) and sweep.max() == pytest.approx(1.0)
    assert curve_values(np.array([1.0, 3.0]))[0].min() == 0.5  # linear: as before
    frame = make_covariate_group(materials=6, points=12, seed=3, temperatures=(296.15,),
                                 rates=RATES)
    from training.data import TrainingData

    data = TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame),
                        frame[["rate"]].to_numpy(), (CovariateColumn("rate", "1/s"),))
    drawn = figures(Posterior(rate_fits["auto"]), data, "strain [1]", "stress [MPa]", "t")
    right = drawn["covariate_rate.png"].axes[1]
    assert right.get_xscale() == "log"
