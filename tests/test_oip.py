"""Open Inference Protocol v2 beside the native API: same numbers, protocol shapes."""

import gzip
import json
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from service.main import create_app
from service.registry.repository import register_version, set_alias
from service.settings import Settings
from service.testing import random_artifact, seed_registry

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


# --- content type and Triton's binary tensor data extension ------------------------------

def binary_request(header: dict, tensor: bytes, declared: int | str | None = None,
                   content_type: str | None = "application/octet-stream") -> dict:
    """httpx arguments for a body: JSON header, then the tensor bytes."""
    encoded = json.dumps(header).encode()
    value = str(len(encoded) if declared is None else declared)
    headers = {"Inference-Header-Content-Length": value.encode("latin-1")}
    if content_type:
        headers["content-type"] = content_type
    return {"content": encoded + tensor, "headers": headers}


def split_binary(response) -> tuple[dict, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    return json.loads(response.content[:length]), response.content[length:]


def binary_tensor(values, datatype="FP64", shape=None) -> tuple[dict, bytes]:
    raw = np.asarray(values, dtype="<f8" if datatype == "FP64" else "<f4").tobytes()
    return ({"name": "strain", "shape": shape or [len(values)], "datatype": datatype,
             "parameters": {"binary_data_size": len(raw)}}, raw)


def test_json_without_content_type_is_accepted_on_oip_but_not_on_the_native_api(
    client: TestClient, registered
) -> None:
    body = json.dumps({"inputs": [strain_tensor(STRAIN)]}).encode()
    oip = client.post("/v2/models/demo/infer", content=body)
    native = client.post("/v1/models/demo/predict",
                         content=json.dumps({"strain": STRAIN}).encode())
    assert oip.status_code == 200, oip.text
    assert native.status_code == 415 and "content-type" in native.text
    assert client.post("/v2/models/demo/infer", content=body,
                       headers={"content-type": "text/plain"}).status_code == 415


def test_binary_input_and_outputs_equal_the_json_answer(client: TestClient,
                                                        registered) -> None:
    tensor, raw = binary_tensor(STRAIN, shape=[6, 1])
    response = client.post("/v2/models/demo/infer", **binary_request({
        "id": "b", "inputs": [tensor],
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "mean"}, {"name": "outside_training_domain"},
                    {"name": "total_sd", "parameters": {"binary_data": False}}],
    }, raw))
    header, tail = split_binary(response)
    expected = client.post("/v1/models/demo/predict", json={"strain": STRAIN}).json()
    mean, flags, total = header["outputs"]
    assert header["id"] == "b" and mean["shape"] == [6, 1]
    assert mean["parameters"] == {"binary_data_size": 48} and "data" not in mean
    assert flags["parameters"] == {"binary_data_size": 6} and flags["datatype"] == "BOOL"
    assert total["data"] == expected["total_sd"] and "parameters" not in total
    assert len(tail) == 54
    assert np.frombuffer(tail[:48], "<f8").tolist() == expected["mean"]
    assert np.frombuffer(tail[48:], np.bool_).tolist() == expected["outside_training_domain"]


def test_raw_binary_request_without_a_header(client: TestClient, registered) -> None:
    raw = np.asarray(STRAIN, "<f8").tobytes()
    response = client.post("/v2/models/demo/infer", content=raw,
                           headers={"Inference-Header-Content-Length": "0"})
    header, tail = split_binary(response)
    assert [o["name"] for o in header["outputs"]][:4] == [
        "mean", "aleatoric_sd", "epistemic_sd", "total_sd"]
    expected = client.post("/v1/models/demo/predict", json={"strain": STRAIN}).json()
    assert np.frombuffer(tail[:48], "<f8").tolist() == expected["mean"]


FP64_TENSOR, FP64_RAW = binary_tensor([0.1, 0.2])


@pytest.mark.parametrize("header,tensor,declared,field", [
    ({"inputs": [FP64_TENSOR]}, FP64_RAW, 10**9, "Inference-Header-Content-Length"),
    ({"inputs": [FP64_TENSOR]}, FP64_RAW, -1, "Inference-Header-Content-Length"),
    ({"inputs": [FP64_TENSOR]}, FP64_RAW, "\u00b2", "Inference-Header-Content-Length"),
    ({"inputs": [FP64_TENSOR]}, FP64_RAW, "9" * 5000, "Inference-Header-Content-Length"),
    ({"inputs": [FP64_TENSOR]}, FP64_RAW[:-1], None,
     "inputs[0].parameters.binary_data_size"),
    ({"inputs": [FP64_TENSOR]}, FP64_RAW + b"\0", None,
     "inputs[0].parameters.binary_data_size"),
    ({"inputs": [{**FP64_TENSOR, "shape": [3]}]}, FP64_RAW, None,
     "inputs[0].parameters.binary_data_size"),
    ({"inputs": [binary_tensor([0.1, 0.2], "FP32")[0]]}, FP64_RAW, None,
     "inputs[0].parameters.binary_data_size"),
    ({"inputs": [FP64_TENSOR]}, np.array([0.1, np.nan]).tobytes(), None, "inputs[0].data[1]"),
    ({"inputs": [{**FP64_TENSOR, "data": [0.1, 0.2]}]}, FP64_RAW, None, "inputs[0].data"),
    ({"inputs": [strain_tensor([0.1])]}, FP64_RAW, None,
     "inputs[0].parameters.binary_data_size"),
    ({"inputs": [FP64_TENSOR], "outputs": [{"name": "mean", "parameters":
                                            {"binary_data": "yes"}}]},
     FP64_RAW, None, "outputs[0].parameters.binary_data"),
])
def test_bad_binary_requests_name_the_problem(client: TestClient, registered, header, tensor,
                                              declared, field) -> None:
    response = client.post("/v2/models/demo/infer",
                           **binary_request(header, tensor, declared))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field, error
    assert outputs_of(client.post("/v2/models/demo/infer", **binary_request(
        {"inputs": [FP64_TENSOR]}, FP64_RAW)))["mean"]["data"]


def test_compressed_bodies_are_refused_with_a_clear_415(client: TestClient,
                                                        registered) -> None:
    body = gzip.compress(json.dumps({"inputs": [strain_tensor([0.1])]}).encode())
    response = client.post("/v2/models/demo/infer", content=body,
                           headers={"Content-Encoding": "gzip"})
    assert response.status_code == 415
    assert response.json()["error"]["details"][0]["field"] == "Content-Encoding"


def test_binary_data_size_without_the_header_is_refused(client: TestClient,
                                                        registered) -> None:
    response = client.post("/v2/models/demo/infer", json={"inputs": [FP64_TENSOR]})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == \
        "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def binary_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for a whole property test (hypothesis runs its examples in one test)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('binary') / 'registry.db'}"
    seed_registry(url, "demo", [random_artifact(seed=21), random_artifact(seed=22)])
    with TestClient(create_app(Settings(database_url=url))) as test_client:
        yield test_client


@pytest.fixture
def small_body_client(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url,
                                        max_request_bytes=4096))) as test_client:
        yield test_client


def test_binary_body_limit_counts_the_tensor_bytes_even_when_chunked(
    small_body_client: TestClient, registered
) -> None:
    client, limit = small_body_client, 4096
    header = json.dumps({"inputs": [binary_tensor(np.zeros(limit // 8))[0]]}).encode()
    tensor = np.zeros(limit // 8).tobytes()

    def chunks():  # no Content-Length: the guard cannot look at the header
        yield header
        yield tensor

    response = client.post("/v2/models/demo/infer", content=chunks(), headers={
        "Inference-Header-Content-Length": str(len(header))})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


# --- the binary path under arbitrary input (schemathesis cannot reach it: OpenAPI cannot
# describe it) -----------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)
_tensors = st.fixed_dictionaries(
    {"name": st.sampled_from(["strain", "x"]),
     "shape": st.lists(st.integers(-2, 5), max_size=3),
     "datatype": st.sampled_from(["FP64", "FP32", "BOOL", "BYTES"])},
    optional={"parameters": st.fixed_dictionaries(
        {}, optional={"binary_data_size": st.integers(-8, 48) | _json_values}),
        "data": _json_values})
_headers = st.fixed_dictionaries(
    {"inputs": st.lists(_tensors, max_size=2) | _json_values},
    optional={"outputs": st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(["mean", "tangent", "outside_training_domain", "x"])},
        optional={"parameters": st.fixed_dictionaries(
            {}, optional={"binary_data": st.booleans() | _json_values})}), max_size=3),
        "parameters": st.fixed_dictionaries(
            {}, optional={"binary_data_output": st.booleans() | _json_values,
                          "alias": _json_values, "extrapolation": _json_values}),
        "id": _json_values})




@st.composite
def _plausible_requests(draw) -> tuple[dict, bytes, int | None]:
    """Mostly well-formed binary requests (so many reach the numerics), sometimes with one
    part off: the values, the declared sizes, the header length."""
    datatype = draw(st.sampled_from(["FP64", "FP32"]))
    values = draw(st.lists(st.floats(width=32 if datatype == "FP32" else 64), min_size=1,
                           max_size=6))
    tensor, raw = binary_tensor(values, datatype,
                                shape=draw(st.sampled_from([[len(values)], [len(values), 1]])))
    tensor["parameters"]["binary_data_size"] += draw(st.sampled_from([0, 0, 0, -1, 4]))
    outputs = draw(st.none() | st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(["mean", "total_sd", "tangent", "outside_training_domain"])},
        optional={"parameters": st.fixed_dictionaries({"binary_data": st.booleans()})}),
        min_size=1, max_size=3))
    header: dict = {"inputs": [tensor], "parameters": draw(st.fixed_dictionaries(
        {}, optional={"binary_data_output": st.booleans(),
                      "extrapolation": st.sampled_from(["allow", "flag", "reject"])}))}
    if outputs is not None:
        header["outputs"] = outputs
    declared = draw(st.none() | st.integers(0, len(json.dumps(header)) + len(raw) + 2))
    return header, raw + draw(st.sampled_from([b"", b"", b"\0"])), declared


_arbitrary_requests = st.tuples(
    _headers, st.binary(max_size=48),
    st.none() | st.integers(-1, 400)
    | st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
              max_size=6))


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(request=st.one_of(_plausible_requests(), _arbitrary_requests))
def test_arbitrary_binary_requests_get_a_2xx_or_a_uniform_4xx(binary_client,
                                                              request) -> None:
    header, tail, declared = request
    response = binary_client.post("/v2/models/demo/infer",
                                  **binary_request(header, tail, declared))
    assert response.status_code in (200, 404, 413, 415, 422), response.text
    if response.status_code == 200:
        if response.headers["content-type"] == "application/octet-stream":
            header, _ = split_binary(response)
        else:
            header = response.json()
        assert header["model_name"] == "demo" and header["outputs"]
    else:
        assert set(response.json()["error"]) == {"code", "message", "details"}
