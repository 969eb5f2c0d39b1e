"""Export of a model with covariates (a tiny real fit, tests/covariate_fit.py): the table
at a condition in every format, tables over a covariate in each solver's convention
(Abaqus temperature or field-variable column, LS-DYNA *DEFINE_TABLE, CSV/JSON covariate
columns) parsed back by the readers into the served numbers (predict with the same
covariates), and a 422 naming the field for each bad condition."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.export.abaqus import material_label
from service.export.table import grid_points
from service.inference import at_conditions
from service.inference.posterior import Posterior
from tests.covariate_fit import register_models
from tests.export_readers import read_abaqus, read_csv, read_lsdyna, read_lsdyna_tables

URL = "/v1/models/{}/export"
CONDITION = {"temperature": 310.0, "rate": 0.05}
QUERY = "temperature:310,rate:0.05"


@pytest.fixture
def posterior(session: Session, covariate_fit) -> Posterior:
    register_models(session, covariate_fit)
    return Posterior(covariate_fit.artifact)


def get(client: TestClient, name: str = "hot", **query):
    response = client.get(URL.format(name), params=query)
    return response


def ok(client: TestClient, **query) -> str:
    response = get(client, **query)
    assert response.status_code == 200, response.text
    return response.text


class Served:
    """Predict's answer (POST /v1/models/hot/predict) with the given covariates."""

    def __init__(self, client: TestClient, strain: np.ndarray, covariates: dict,
                 **options) -> None:
        response = client.post("/v1/models/hot/predict", json={
            "strain": np.asarray(strain).tolist(), "covariates": covariates, **options})
        assert response.status_code == 200, response.text
        self.body = response.json()

    def __getattr__(self, field: str) -> np.ndarray:
        return np.asarray(self.body[field], dtype=float)


def served(client: TestClient, strain: np.ndarray, condition: dict[str, float]) -> Served:
    return Served(client, strain, condition, tangent=True)


def close(got: np.ndarray, want: np.ndarray) -> None:
    """The export and predict run the same kernel on the same strains."""
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_a_table_at_a_condition_is_the_model_at_that_condition(client, posterior) -> None:
    comments, columns, names = read_csv(ok(client, covariates=QUERY, points=41))
    assert names[:3] == ["temperature", "rate", "strain"]
    assert np.all(columns["temperature"] == 310.0) and np.all(columns["rate"] == 0.05)
    expected = served(client, columns["strain"], CONDITION)
    for field in ("mean", "aleatoric_sd", "epistemic_sd", "total_sd", "tangent",
                  "tangent_epistemic_sd"):
        close(columns[field], getattr(expected, field))
    line = next(c for c in comments if c.startswith("covariates:"))
    assert "temperature=310.0 K, rate=0.05 1/s" in line and "condition_distance" in line
    assert "outside" not in line
    # A condition beyond the training range says so.
    hot = read_csv(ok(client, covariates="temperature:400,rate:0.05", points=5))[0]
    assert "outside the training range" in next(c for c in hot if c.startswith("covariates"))


def test_every_format_at_a_condition_parses_into_the_csv_numbers(client, posterior) -> None:
    query = {"covariates": QUERY, "points": 21, "quantiles": "0.1,0.9"}
    _, columns, _ = read_csv(ok(client, **query))
    payload = get(client, format="json", **query).json()
    assert payload["over"] is None and payload["covariates"][0] == {"name": "temperature",
                                                                    "unit": "K"}
    assert payload["conditions"][0]["temperature"] == 310.0
    np.testing.assert_array_equal(payload["q0.9"], columns["q0.9"])
    materials = read_abaqus(ok(client, format="abaqus", **query))
    mean = materials[material_label("hot", 1, "mean")]
    np.testing.assert_allclose(mean.stress, columns["mean"], rtol=1e-15)
    assert all(t is None for t in mean.temperature)  # one condition: no temperature column
    curves = read_lsdyna(ok(client, format="lsdyna", **query))
    np.testing.assert_allclose(curves[1002].ordinate, columns["q0.9"], rtol=1e-12)


def test_abaqus_over_temperature_has_its_temperature_column(client, posterior) -> None:
    text = ok(client, format="abaqus", covariates="rate:0.05",
              over="temperature:323.15,283.15,300", points=31, quantiles="0.9")
    materials = read_abaqus(text)
    assert set(materials) == {material_label("hot", 1, c) for c in ("mean", "q0.9")}
    mean = materials[material_label("hot", 1, "mean")]
    assert "MARLOW" in dict(mean.keywords)["HYPERELASTIC"]
    assert float(mean.parameter("HYPERELASTIC", "POISSON")) == 0.5
    temperature = np.array(mean.temperature)
    # Rows per temperature, ascending, each block the whole grid.
    np.testing.assert_array_equal(np.unique(temperature), [283.15, 300.0, 323.15])
    assert np.all(np.diff(temperature) >= 0)
    for value in (283.15, 300.0, 323.15):
        rows = temperature == value
        strain = np.array(mean.strain)[rows]
        assert strain.size == 31
        expected = served(client, strain, {"temperature": value, "rate": 0.05})
        close(np.array(mean.stress)[rows], expected.mean)


def test_abaqus_over_rate_uses_the_first_field_variable(client, posterior) -> None:
    materials = read_abaqus(ok(client, format="abaqus", covariates="temperature:296.15",
                               over="rate:0.01,0.1", points=11))
    mean = materials[material_label("hot", 1, "mean")]
    assert mean.parameter("UNIAXIALTESTDATA", "DEPENDENCIES") == "1"
    assert all(t is None for t in mean.temperature)
    rate = np.array([v[0] for v in mean.field_variables])
    for value in (0.01, 0.1):
        rows = rate == value
        expected = served(client, np.array(mean.strain)[rows],
                          {"temperature": 296.15, "rate": value})
        close(np.array(mean.stress)[rows], expected.mean)


def test_lsdyna_over_temperature_is_a_define_table_of_curves(client, posterior) -> None:
    text = ok(client, format="lsdyna", covariates="rate:0.05", over="temperature",
              points=21, curves=2, seed=5, first_curve_id=500)
    tables = read_lsdyna_tables(text)
    curves = read_lsdyna(text)
    # One table per exported curve (mean, curve_1, curve_2), each over the tested
    # temperatures, followed by its curves.
    assert sorted(tables) == [500, 504, 508]
    mean = tables[500]
    np.testing.assert_array_equal(mean.values, [273.15, 296.15, 323.15])
    assert mean.curves == [501, 502, 503] and "mean over temperature" in mean.title
    for value, lcid in zip(mean.values, mean.curves, strict=True):
        curve = curves[lcid]
        expected = served(client, curve.abscissa, {"temperature": value, "rate": 0.05})
        close(curve.ordinate, expected.mean)
    # curve_j is one material across the temperatures: the samples predict draws for the
    # same seed at the tables' strains (grid and midpoints, temperature after temperature)
    # with per-strain covariates, less predict's test noise.
    _, both = grid_points(-0.5, 0.5, 21)
    rows = np.column_stack([np.repeat(mean.values, both.size), np.full(3 * both.size, 0.05)])
    materials = at_conditions.samples(posterior, np.tile(both, 3), 2, 5, None,
                                      at_conditions.Placement(rows), test_noise=False)
    for i, table in enumerate((tables[504], tables[508])):
        for k, lcid in enumerate(table.curves):
            block = materials[k * both.size:(k + 1) * both.size, i]
            np.testing.assert_allclose(curves[lcid].ordinate, block[0::2], rtol=1e-12)
    _, columns, _ = read_csv(ok(client, covariates="rate:0.05", over="temperature",
                                points=21, curves=2, seed=5))
    at = columns["temperature"] == 296.15
    # LS-DYNA's 20-character fields hold 13 significant digits, the CSV 17.
    np.testing.assert_allclose(curves[tables[504].curves[1]].ordinate,
                               columns["curve_1"][at], rtol=1e-12, atol=1e-15)


def test_csv_and_json_over_a_covariate_have_one_column_per_covariate(client, posterior) -> None:
    query = {"covariates": "rate:0.05", "over": "temperature:280,320", "points": 9}
    comments, columns, names = read_csv(ok(client, **query))
    assert names[:3] == ["temperature", "rate", "strain"] and columns["strain"].size == 18
    assert any(c.startswith("over: temperature [K], 2 values") for c in comments)
    payload = get(client, format="json", **query).json()
    assert payload["over"] == "temperature" and len(payload["conditions"]) == 2
    for name in names:
        np.testing.assert_array_equal(payload[name], columns[name])
    at = columns["temperature"] == 320.0
    expected = served(client, columns["strain"][at], {"temperature": 320.0, "rate": 0.05})
    close(columns["epistemic_sd"][at], expected.epistemic_sd)


@pytest.mark.parametrize(("name", "query", "field"), [
    ("hot", {}, "covariates"),
    ("hot", {"covariates": "temperature:310"}, "covariates.rate"),
    ("hot", {"covariates": QUERY + ",pressure:2"}, "covariates.pressure"),
    ("hot", {"covariates": "temperature:hot,rate:0.05"}, "covariates.temperature"),
    ("hot", {"covariates": "temperature:inf,rate:0.05"}, "covariates.temperature"),
    ("hot", {"covariates": "temperature:nan,rate:0.05"}, "covariates.temperature"),
    ("hot", {"covariates": "temperature,rate:0.05"}, "covariates"),
    ("hot", {"covariates": "temperature:300,temperature:310"}, "covariates.temperature"),
    ("hot", {"covariates": "rate:0.05", "over": "pressure:1,2"}, "over"),
    ("hot", {"covariates": "rate:0.05", "over": "temperature:300,x"}, "over[1]"),
    ("hot", {"covariates": "rate:0.05", "over": "temperature:300,300"}, "over[1]"),
    ("hot", {"covariates": "rate:0.05", "over": "temperature:" + ",".join(
        str(300 + i) for i in range(51))}, "over"),
    ("hot", {"covariates": QUERY, "over": "temperature:300,310"}, "covariates.temperature"),
    ("hot", {"over": "temperature:300,310"}, "covariates.rate"),
    ("plain", {"covariates": QUERY}, "covariates"),
    ("plain", {"over": "temperature:300"}, "over"),
])
def test_a_bad_condition_is_a_422_naming_the_field(client, posterior, name, query,
                                                   field) -> None:
    response = get(client, name, **query)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field, error
    assert field in error["message"]


def test_tables_over_a_covariate_share_the_work_limits(client, posterior) -> None:
    response = get(client, covariates="rate:0.05", over="temperature:280,300,320",
                   points=500_000)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["details"][0]["field"] == "over"
