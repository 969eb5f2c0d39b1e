"""Open Inference Protocol v2 beside the native API: same numbers, protocol shapes."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.registry.repository import register_version, set_alias
from service.testing import random_artifact

STRAIN = [-0.45, -0.2, 0.0, 0.15, 0.5, 0.7]


@pytest.fixture
def registered(session: Session) -> None:
    """Model 'demo' versions 1 and 2; production points at version 2."""
    register_version(session, "demo", random_artifact(seed=21).to_bytes())
    register_version(session, "demo", random_artifact(seed=22).to_bytes())
    set_alias(session, "demo", "production", 2)
    set_alias(session, "demo", "candidate", 1)
    session.commit()


def infer(client: TestClient, body: dict, path: str = "/v2/models/demo/infer"):
    return client.post(path, json=body)


def strain_tensor(data, shape=None, datatype="FP64") -> dict:
    return {"name": "strain", "shape": shape or [len(data)], "datatype": datatype,
            "data": data}


def outputs_of(response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {o["name"]: o for o in response.json()["outputs"]}


@pytest.mark.parametrize("path,native", [
    ("/v2/models/demo/infer", {}),
    ("/v2/models/demo/versions/1/infer", {"version": 1}),
    ("/v2/models/demo/versions/2/infer", {"version": 2}),
])
def test_infer_returns_the_native_endpoints_numbers(
    client: TestClient, registered, path, native
) -> None:
    response = infer(client, {"id": "req-1", "inputs": [strain_tensor(STRAIN)]}, path)
    expected = client.post("/v1/models/demo/predict",
                           json={"strain": STRAIN, **native}).json()
    body = response.json()
    assert body["model_name"] == "demo"
    assert body["model_version"] == str(expected["version"])
    assert body["id"] == "req-1"
    outputs = outputs_of(response)
    for name in ("mean", "aleatoric_sd", "epistemic_sd", "total_sd"):
        assert outputs[name]["datatype"] == "FP64" and outputs[name]["shape"] == [6]
        assert outputs[name]["data"] == expected[name], name  # bit for bit
    assert outputs["outside_training_domain"]["datatype"] == "BOOL"
    assert outputs["outside_training_domain"]["data"] == expected["outside_training_domain"]


def test_nested_fp32_input_and_requested_outputs(client: TestClient, registered) -> None:
    nested = [[x] for x in STRAIN]
    response = infer(client, {
        "inputs": [strain_tensor(nested, shape=[6, 1], datatype="FP32")],
        "outputs": [{"name": "mean"}, {"name": "tangent"}, {"name": "tangent_epistemic_sd"}],
        "parameters": {"alias": "candidate"},
    })
    outputs = outputs_of(response)
    assert list(outputs) == ["mean", "tangent", "tangent_epistemic_sd"]
    assert response.json()["model_version"] == "1"
    as_fp32 = np.asarray(STRAIN, dtype=np.float32).astype(np.float64).tolist()
    native = client.post("/v1/models/demo/predict",
                         json={"strain": as_fp32, "alias": "candidate", "tangent": True}).json()
    assert outputs["mean"]["shape"] == [6, 1]
    assert outputs["mean"]["data"] == native["mean"]
    assert outputs["tangent"]["data"] == native["tangent"]


def test_health_and_metadata_endpoints(client: TestClient, registered) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "material-surrogate"
    metadata = client.get("/v2/models/demo").json()
    assert metadata["versions"] == ["1", "2"]
    assert metadata["inputs"] == [{"name": "strain", "datatype": "FP64", "shape": [-1]}]
    assert {o["name"] for o in metadata["outputs"]} >= {
        "mean", "aleatoric_sd", "epistemic_sd", "total_sd"}
    assert client.get("/v2/models/demo/versions/1").status_code == 200
    assert client.get("/v2/models/demo/ready").json() == {
        "name": "demo", "version": "2", "ready": True}
    assert client.get("/v2/models/demo/versions/1/ready").json()["version"] == "1"


@pytest.mark.parametrize("method,path,body,status,field", [
    ("get", "/v2/models/nope", None, 404, None),
    ("get", "/v2/models/demo/versions/9/ready", None, 404, None),
    ("get", "/v2/models/demo/versions/zero", None, 422, "path.version"),
    ("post", "/v2/models/nope/infer", {"inputs": [strain_tensor([0.1])]}, 404, None),
    ("post", "/v2/models/demo/infer",
     {"inputs": [{**strain_tensor([0.1]), "name": "x"}]}, 422, "inputs[0].name"),
    ("post", "/v2/models/demo/infer", {"inputs": [strain_tensor([0.1, 0.2], shape=[3])]},
     422, "inputs[0].shape"),
    ("post", "/v2/models/demo/infer", {"inputs": [strain_tensor([0.1], shape=[1, 2])]},
     422, "inputs[0].shape"),
    ("post", "/v2/models/demo/infer", {"inputs": [strain_tensor([0.1], datatype="INT8")]},
     422, "inputs[0].datatype"),
    ("post", "/v2/models/demo/infer", {"inputs": [strain_tensor([0.1, "a"])]},
     422, "inputs[0].data[1]"),
    ("post", "/v2/models/demo/infer", {"inputs": [strain_tensor([1e39], datatype="FP32")]},
     422, "inputs[0].data[0]"),
    ("post", "/v2/models/demo/infer", {"inputs": []}, 422, "inputs"),
    ("post", "/v2/models/demo/infer",
     {"inputs": [strain_tensor([0.1])], "outputs": [{"name": "stress"}]}, 422,
     "outputs[0].name"),
    ("post", "/v2/models/demo/infer",
     {"inputs": [strain_tensor([0.1, 0.9])], "parameters": {"extrapolation": "reject"}},
     422, "inputs[0].data[1]"),
])
def test_protocol_errors_use_the_uniform_error_body(
    client: TestClient, registered, method, path, body, status, field
) -> None:
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["message"]
    if field is not None:
        assert error["details"][0]["field"] == field
    assert outputs_of(infer(client, {"inputs": [strain_tensor([0.0])]}))["mean"]["data"]
