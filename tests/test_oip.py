"""Open Inference Protocol v2 beside the native API: same numbers, protocol shapes.
(The binary tensor extension: tests/test_oip_binary.py; the real clients and gRPC:
tests/test_oip_clients.py, tests/test_oip_grpc.py.)"""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.oip_helpers import (  # noqa: F401 (registered: a fixture)
    STRAIN,
    outputs_of,
    registered,
    strain_tensor,
)

# Model 'demo' v1 and v2 registered (production -> 2, candidate -> 1) for every test.
pytestmark = pytest.mark.usefixtures("registered")


def infer(client: TestClient, body: dict, path: str = "/v2/models/demo/infer"):
    return client.post(path, json=body)


@pytest.mark.parametrize("path,native", [
    ("/v2/models/demo/infer", {}),
    ("/v2/models/demo/versions/1/infer", {"version": 1}),
    ("/v2/models/demo/versions/2/infer", {"version": 2}),
])
def test_infer_returns_the_native_endpoints_numbers(
    client: TestClient, path, native
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


def test_nested_fp32_input_and_requested_outputs(client: TestClient) -> None:
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


def test_health_and_metadata_endpoints(client: TestClient) -> None:
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
    client: TestClient, method, path, body, status, field
) -> None:
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["message"]
    if field is not None:
        assert error["details"][0]["field"] == field
    assert outputs_of(infer(client, {"inputs": [strain_tensor([0.0])]}))["mean"]["data"]


def test_json_without_content_type_is_accepted_on_oip_but_not_on_the_native_api(
    client: TestClient,
) -> None:
    body = json.dumps({"inputs": [strain_tensor(STRAIN)]}).encode()
    oip = client.post("/v2/models/demo/infer", content=body)
    native = client.post("/v1/models/demo/predict",
                         content=json.dumps({"strain": STRAIN}).encode())
    assert oip.status_code == 200, oip.text
    assert native.status_code == 415 and "content-type" in native.text
    assert client.post("/v2/models/demo/infer", content=body,
                       headers={"content-type": "text/plain"}).status_code == 415


def test_server_readiness_follows_readyz_while_draining(client: TestClient) -> None:
    assert client.get("/v2/health/ready").json() == {"ready": True}
    client.app.state.drain.begin()
    response = client.get("/v2/health/ready")
    assert response.status_code == 503 and response.json() == {"ready": False}
    assert outputs_of(infer(client, {"inputs": [strain_tensor([0.0])]}))["mean"]["data"]
