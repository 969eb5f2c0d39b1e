"""The Open Inference Protocol for a model with covariates (a tiny real fit,
tests/covariate_fit.py), in process: covariates are named input tensors (FP64/FP32, one
value or one per strain, JSON or binary), the metadata lists them, the answers are the
native endpoint's at the same covariates, and each bad input is a 422 naming the tensor.
(The real clients: tests/test_oip_clients.py, tests/test_oip_grpc.py.)"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.covariate_fit import register_models
from tests.oip_helpers import outputs_of

STRAIN = [-0.6, -0.3, 0.0, 0.2, 0.45, 0.6]
RATES = [0.01, 0.02, 0.05, 0.1, 0.1, 0.2]  # per strain; 0.2 is beyond the tested range
DEFAULTS = ["mean", "aleatoric_sd", "epistemic_sd", "total_sd", "outside_training_domain",
            "between_material_sd", "within_material_sd", "condition_distance"]


@pytest.fixture
def models(session: Session, covariate_fit) -> None:
    register_models(session, covariate_fit)


def tensor(name: str, data, datatype: str = "FP64") -> dict:
    return {"name": name, "shape": [len(data)], "datatype": datatype, "data": data}


def native(client: TestClient, strain, covariates: dict, **options) -> dict:
    response = client.post("/v1/models/hot/predict", json={
        "strain": strain, "covariates": covariates, **options})
    assert response.status_code == 200, response.text
    return response.json()


def infer(client: TestClient, inputs: list[dict], name: str = "hot", **body):
    return client.post(f"/v2/models/{name}/infer", json={"inputs": inputs, **body})


def test_metadata_lists_the_covariate_inputs(client: TestClient, models) -> None:
    metadata = client.get("/v2/models/hot").json()
    assert metadata["inputs"] == [{"name": n, "datatype": "FP64", "shape": [-1]}
                                  for n in ("strain", "temperature", "rate")]
    assert metadata["parameters"]["covariate_units"] == "temperature=K,rate=1/s"
    assert "condition_distance" in [o["name"] for o in metadata["outputs"]]
    plain = client.get("/v2/models/plain").json()
    assert plain["inputs"] == [{"name": "strain", "datatype": "FP64", "shape": [-1]}]
    assert "condition_distance" not in [o["name"] for o in plain["outputs"]]
    assert "covariate_units" not in plain["parameters"]


def test_covariate_tensors_answer_what_native_predict_answers(client: TestClient,
                                                              models) -> None:
    # One temperature for every strain ([1]), one rate per strain ([n]), in any order.
    response = infer(client, [tensor("rate", RATES), tensor("strain", STRAIN),
                              tensor("temperature", [310.0])],
                     outputs=[{"name": n} for n in [*DEFAULTS, "tangent"]])
    assert response.status_code == 200, response.text
    outputs = outputs_of(response)
    expected = native(client, STRAIN, {"temperature": 310.0, "rate": RATES}, tangent=True)
    for name in [*DEFAULTS, "tangent"]:
        assert outputs[name]["data"] == expected[name], name  # bit for bit
        assert outputs[name]["shape"] == [len(STRAIN)]
    assert outputs["outside_training_domain"]["data"][-1] is True  # rate 0.2
    # Default outputs of a covariate model include the condition distance.
    plain_request = infer(client, [tensor("strain", STRAIN), tensor("temperature", [296.15]),
                                   tensor("rate", [0.01])])
    assert list(outputs_of(plain_request)) == DEFAULTS
    at_tested = native(client, STRAIN, {"temperature": 296.15, "rate": 0.01})
    assert outputs_of(plain_request)["condition_distance"]["data"] == \
        at_tested["condition_distance"] == [0.0] * len(STRAIN)


def test_fp32_and_binary_covariate_tensors(client: TestClient, models) -> None:
    strain = np.asarray(STRAIN)
    rate = np.asarray(RATES, dtype=np.float32)
    header = orjson.dumps({
        "inputs": [
            {"name": "strain", "shape": [6], "datatype": "FP64",
             "parameters": {"binary_data_size": 48}},
            {"name": "temperature", "shape": [1, 1], "datatype": "FP64", "data": [[330.0]]},
            {"name": "rate", "shape": [6, 1], "datatype": "FP32",
             "parameters": {"binary_data_size": 24}}],
        "outputs": [{"name": "mean"}, {"name": "epistemic_sd"}]})
    response = client.post("/v2/models/hot/infer",
                           content=header + strain.tobytes() + rate.tobytes(),
                           headers={"inference-header-content-length": str(len(header))})
    assert response.status_code == 200, response.text
    expected = native(client, STRAIN, {"temperature": 330.0,
                                       "rate": rate.astype(np.float64).tolist()})
    outputs = outputs_of(response)
    assert outputs["mean"]["data"] == expected["mean"]
    assert outputs["epistemic_sd"]["data"] == expected["epistemic_sd"]


@pytest.mark.parametrize(("name", "inputs", "body", "field"), [
    ("hot", [tensor("strain", STRAIN), tensor("temperature", [300.0])], {}, "inputs.rate"),
    ("hot", [tensor("strain", STRAIN), tensor("temperature", [300.0]),
             tensor("rate", [0.01]), tensor("pressure", [1.0])], {}, "inputs.pressure"),
    ("plain", [tensor("strain", STRAIN), tensor("temperature", [300.0])], {},
     "inputs.temperature"),
    ("hot", [tensor("strain", STRAIN), tensor("temperature", [300.0, 310.0]),
             tensor("rate", [0.01])], {}, "inputs[1].shape"),
    ("hot", [tensor("strain", STRAIN), tensor("temperature", [300.0]),
             tensor("rate", [0.01, "x", 0, 0, 0, 0])], {}, "inputs[2].data[1]"),
    ("hot", [tensor("strain", STRAIN), tensor("temperature", [1e39], "FP32"),
             tensor("rate", [0.01])], {}, "inputs[1].data[0]"),
    ("hot", [tensor("strain", STRAIN), tensor("temperature", [300.0], "INT8"),
             tensor("rate", [0.01])], {}, "inputs[1].datatype"),
    ("hot", [tensor("strain", STRAIN), tensor("rate", [0.01]), tensor("rate", [0.01])], {},
     "inputs[2].name"),
    ("hot", [tensor("temperature", [300.0]), tensor("rate", [0.01])], {}, "inputs"),
    ("hot", [tensor("strain", [0.1]), tensor("temperature", [400.0]),
             tensor("rate", [0.01])], {"parameters": {"extrapolation": "reject"}},
     "inputs.temperature[0]"),
    ("plain", [tensor("strain", STRAIN)], {"outputs": [{"name": "condition_distance"}]},
     "outputs[0].name"),
])
def test_a_bad_input_is_a_422_naming_the_tensor(client: TestClient, models, name, inputs,
                                                 body, field) -> None:
    response = infer(client, inputs, name, **body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field, error
