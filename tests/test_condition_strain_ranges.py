"""The strain range tested at each condition: specimens tested hot often fail at smaller
strains, so a strain inside a model's overall training domain may never have been tested
near the condition asked for. The fit records each tested condition's strain range
(`tested_strain_ranges`, only where some condition stops short), and every way in flags
(`outside_training_domain`) or, with extrapolation=reject, refuses such strains naming
them; models without the field answer as before."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.artifact import Artifact, ArtifactError
from service.inference.posterior import Posterior
from service.manifest import STRAIN_RANGES_SCHEMA_VERSION
from service.registry.writes import register
from tests.covariate_fit import covariate_data
from tests.service_process import random_artifact, smooth_curve_section
from training.config import BNNConfig
from training.data import subset
from training.pipeline import condition_strain_ranges, covariate_inputs, fit_data

HOT = 353.15
# The hot conditions were tested up to this strain only; the others over -0.5..0.5.
HOT_LIMIT = 0.2


def short_hot_artifact() -> Artifact:
    """Two covariates (temperature, rate; 3 x 3 tested conditions) and a curve model; at
    353.15 K the strains stop at HOT_LIMIT."""
    artifact = random_artifact(draws=20, hidden_sizes=(8,), covariates=2, seed=3)
    manifest = copy.deepcopy(artifact.manifest)
    manifest["schema_version"] = STRAIN_RANGES_SCHEMA_VERSION
    manifest["curve_model"] = smooth_curve_section(basis=8)  # for observed points
    manifest["tested_strain_ranges"] = [
        [-0.5, HOT_LIMIT if temperature == HOT else 0.5]
        for temperature, _ in manifest["tested_conditions"]]
    out = Artifact(manifest=manifest, arrays=artifact.arrays)
    out.validate()
    return out


# --- training -----------------------------------------------------------------------

def test_ranges_are_recorded_per_condition_only_where_one_stops_short() -> None:
    strain = np.array([-0.5, 0.0, 0.5, -0.5, 0.1, -0.4, 0.5])
    condition = np.array([0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(condition_strain_ranges(strain, condition, 3),
                                  [[-0.5, 0.5], [-0.5, 0.1], [-0.4, 0.5]])
    assert condition_strain_ranges(strain, np.array([0, 0, 0, 1, 1, 1, 1]), 2) is None
    # Ends a reading apart (within 5% of the span) count as the domain's.
    near = np.array([-0.5, 0.5, -0.49, 0.47, -0.5, 0.2])
    np.testing.assert_array_equal(condition_strain_ranges(near, np.repeat([0, 1, 2], 2), 3),
                                  [[-0.5, 0.5], [-0.5, 0.5], [-0.5, 0.2]])
    assert condition_strain_ranges(near[:4], np.repeat([0, 1], 2), 2) is None


def test_the_manifest_lists_ranges_in_the_order_of_the_tested_conditions() -> None:
    data = covariate_data()
    assert covariate_inputs(data, data.x)[1].get("tested_strain_ranges") is None
    hot = data.covariates[:, 0] == data.covariates[:, 0].max()
    short = subset(data, np.flatnonzero(~hot | (data.x <= HOT_LIMIT)))
    sections = covariate_inputs(short, short.x)[1]
    assert sections["schema_version"] == STRAIN_RANGES_SCHEMA_VERSION
    for condition, (low, high) in zip(sections["tested_conditions"],
                                      sections["tested_strain_ranges"], strict=True):
        rows = np.all(short.covariates == condition, axis=1)
        assert (low, high) == (short.x[rows].min(), short.x[rows].max())
        assert high <= HOT_LIMIT if condition[0] == data.covariates[:, 0].max() else high == 0.5


@pytest.mark.slow
def test_a_real_fit_of_short_hot_curves_flags_the_strains_never_tested_hot(
    tmp_path: Path
) -> None:
    data = covariate_data()
    hottest = data.covariates[:, 0].max()
    short = subset(data, np.flatnonzero((data.covariates[:, 0] < hottest)
                                        | (data.x <= HOT_LIMIT)))
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=2,
                                        map_max_iterations=200)
    trained = fit_data(short, config, holdout=0, parallel=False, report_dir=tmp_path)
    spec = Artifact.from_bytes(trained.artifact.to_bytes()).spec
    # The report draws the hot curve dotted past its tested strains.
    assert (tmp_path / "covariate_temperature.png").stat().st_size > 0
    assert spec.schema_version == STRAIN_RANGES_SCHEMA_VERSION
    assert spec.tested_strain_ranges is not None
    strain = np.array([0.1, 0.4])
    for temperature, expected in ((hottest, [False, True]), (296.15, [False, False])):
        at = np.tile([temperature, 0.01], (2, 1))
        assert trained.posterior.outside_domain(strain, at).tolist() == expected


def test_a_manifest_with_ranges_and_an_old_schema_version_is_refused() -> None:
    manifest = copy.deepcopy(short_hot_artifact().manifest)
    manifest["schema_version"] = 3
    with pytest.raises(ArtifactError, match="tested_strain_ranges needs schema_version 4"):
        Artifact(manifest=manifest, arrays=short_hot_artifact().arrays).validate()


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["tested_strain_ranges"].pop(), "tested_strain_ranges has 8 entries"),
    (lambda m: m["tested_strain_ranges"].__setitem__(0, [0.3, 0.1]), "is above max"),
    (lambda m: m["tested_strain_ranges"].__setitem__(0, [0.1]), "tested_strain_ranges.0"),
    (lambda m: m["tested_strain_ranges"][0].__setitem__(0, "0.1"), "tested_strain_ranges"),
])
def test_a_malformed_range_is_refused_naming_it(change, message) -> None:
    manifest = copy.deepcopy(short_hot_artifact().manifest)
    change(manifest)
    with pytest.raises(ArtifactError, match=message):
        Artifact(manifest=manifest, arrays=short_hot_artifact().arrays).validate()


# --- serving ------------------------------------------------------------------------

@pytest.fixture
def short(session: Session) -> Posterior:
    artifact = short_hot_artifact()
    register(session, "short", artifact.to_bytes(), actor="test")
    session.commit()
    return Posterior(artifact)


def test_the_flag_marks_strains_beyond_the_range_tested_at_the_nearest_condition(
    client: TestClient, short
) -> None:
    body = client.post("/v1/models/short/predict", json={
        "strain": [0.1, 0.4, 0.4, 0.4],
        "covariates": {"temperature": [HOT, HOT, 296.15, 340.0], "rate": 0.01}}).json()
    # 340 K is nearer 353.15 K (tested to 0.2) than 296.15 K.
    assert body["outside_training_domain"] == [False, True, False, True]
    unchanged = client.post("/v1/models/short/predict", json={
        "strain": [0.4], "extrapolation": "allow",
        "covariates": {"temperature": HOT, "rate": 0.01}}).json()
    assert "outside_training_domain" not in unchanged
    np.testing.assert_allclose(unchanged["mean"], short.at([HOT, 0.01]).predict(
        np.array([0.4])).mean, rtol=1e-12)


def test_reject_names_each_strain_never_tested_near_its_condition(
    client: TestClient, short
) -> None:
    response = client.post("/v1/models/short/predict", json={
        "strain": [0.1, 0.3, 0.45], "extrapolation": "reject",
        "covariates": {"temperature": HOT, "rate": 0.01}})
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == ["strain[1]", "strain[2]"]
    assert f"[-0.5, {HOT_LIMIT:g}]" in details[0]["message"]
    observed = client.post("/v1/models/short/predict", json={
        "strain": [0.1], "extrapolation": "reject",
        "covariates": {"temperature": 296.15, "rate": 0.01},
        "observed": {"strain": [0.1, 0.3], "stress": [0.1, 0.2],
                     "covariates": {"temperature": HOT, "rate": 0.01}}})
    assert observed.status_code == 422, observed.text
    assert [d["field"] for d in observed.json()["error"]["details"]] == ["observed.strain[1]"]
    tested = client.post("/v1/models/short/predict", json={
        "strain": [0.1, 0.3, 0.45], "extrapolation": "reject",
        "covariates": {"temperature": 296.15, "rate": 0.01}})
    assert tested.status_code == 200, tested.text


def test_oip_flags_and_rejects_alike(client: TestClient, short) -> None:
    def infer(extrapolation: str):
        return client.post("/v2/models/short/infer", json={
            "parameters": {"extrapolation": extrapolation},
            "inputs": [
                {"name": "strain", "datatype": "FP64", "shape": [2], "data": [0.1, 0.4]},
                {"name": "temperature", "datatype": "FP64", "shape": [1], "data": [HOT]},
                {"name": "rate", "datatype": "FP64", "shape": [1], "data": [0.01]}],
            "outputs": [{"name": "outside_training_domain"}]})

    flagged = infer("flag")
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["outputs"][0]["data"] == [False, True]
    rejected = infer("reject")
    assert rejected.status_code == 422, rejected.text
    assert [d["field"] for d in rejected.json()["error"]["details"]] == ["inputs[0].data[1]"]


def test_the_version_page_and_the_export_header_show_the_tested_strains(
    client: TestClient, short
) -> None:
    html = client.get("/ui/models/short/versions/1").text
    cells = re.findall(r'data-col="strains">(.*?)</td>', html)
    hot = [i for i, (t, _) in enumerate(short.spec.tested_conditions) if t == HOT]
    assert len(cells) == 9 and {cells[i] for i in hot} == {f"-0.5 to {HOT_LIMIT:g}"}
    text = client.get("/v1/models/short/export", params={
        "covariates": f"temperature:{HOT},rate:0.01", "points": 5}).text
    line = next(c for c in text.splitlines() if "covariates:" in c)
    assert f"strains tested at the nearest tested condition: -0.5 to {HOT_LIMIT:g}" in line
    table = client.get("/v1/models/short/export", params={
        "covariates": f"temperature:{HOT},rate:0.01", "points": 5, "format": "json"}).json()
    assert table["conditions"][0]["tested_strain_range"] == [-0.5, HOT_LIMIT]
