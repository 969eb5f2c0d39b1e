"""Triton's binary tensor data extension on the OIP HTTP routes, in process: binary inputs
and outputs equal the JSON answer, every malformed binary request is a 422 naming the
field, the body limit counts the tensor bytes, and arbitrary requests (which schemathesis
cannot make: OpenAPI cannot describe them) get a 200 or the uniform 4xx."""

import gzip
import json
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.main import create_app
from service.settings import Settings
from tests.oip_helpers import (  # noqa: F401 (registered: a fixture)
    STRAIN,
    outputs_of,
    registered,
    strain_tensor,
)
from tests.service_process import random_artifact, seed_registry

# Model 'demo' v1 and v2 registered (production -> 2, candidate -> 1) for every test.
pytestmark = pytest.mark.usefixtures("registered")


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


def test_binary_input_and_outputs_equal_the_json_answer(client: TestClient) -> None:
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


def test_raw_binary_request_without_a_header(client: TestClient) -> None:
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
def test_bad_binary_requests_name_the_problem(client: TestClient, header, tensor,
                                              declared, field) -> None:
    response = client.post("/v2/models/demo/infer",
                           **binary_request(header, tensor, declared))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field, error
    assert outputs_of(client.post("/v2/models/demo/infer", **binary_request(
        {"inputs": [FP64_TENSOR]}, FP64_RAW)))["mean"]["data"]


def test_compressed_bodies_are_refused_with_a_clear_415(client: TestClient) -> None:
    body = gzip.compress(json.dumps({"inputs": [strain_tensor([0.1])]}).encode())
    response = client.post("/v2/models/demo/infer", content=body,
                           headers={"Content-Encoding": "gzip"})
    assert response.status_code == 415
    assert response.json()["error"]["details"][0]["field"] == "Content-Encoding"


def test_binary_data_size_without_the_header_is_refused(client: TestClient) -> None:
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
    small_body_client: TestClient,
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
