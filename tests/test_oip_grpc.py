"""The Open Inference Protocol over gRPC through the real client (tritonclient.grpc, and
its generated stubs for typed contents) against a live service: the native endpoint's
numbers, routing, status codes, and arbitrary requests never an INTERNAL error."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests.oip_live import (
    HOT_OUTPUTS,
    HOT_RATE,
    HOT_STRAIN,
    HOT_TEMPERATURE,
    MAX_BYTES,
    MAX_POINTS,
    OUTPUTS,
    STRAIN,
    Service,
    assert_same,
    hot_native,
    live_service,
    native,
)
from tests.postgres_server import PostgresServer, find_pg_bin
from tests.service_process import (
    ServerProcess,
    free_port,
    random_artifact,
    seed_registry,
    service_command,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, covariate_fit) -> Iterator[Service]:
    with live_service(tmp_path_factory.mktemp("oip-live"),
                      covariate_fit.artifact) as running:
        yield running


def test_grpc_infer_with_covariate_tensors_equals_native(service: Service) -> None:
    client = grpcclient.InferenceServerClient(service.grpc_address)
    metadata = client.get_model_metadata("hot", as_json=True)
    assert metadata["inputs"] == [{"name": n, "datatype": "FP64", "shape": ["-1"]}
                                  for n in ("strain", "temperature", "rate")]
    inputs = []
    for name, values in (("rate", HOT_RATE), ("strain", HOT_STRAIN),
                         ("temperature", np.array([HOT_TEMPERATURE]))):
        tensor = grpcclient.InferInput(name, list(values.shape), "FP64")
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    result = client.infer("hot", inputs,
                          outputs=[grpcclient.InferRequestedOutput(n) for n in HOT_OUTPUTS])
    assert_same(result, hot_native(service), HOT_OUTPUTS)
    # A missing covariate tensor is INVALID_ARGUMENT naming it.
    with pytest.raises(InferenceServerException) as missing:
        client.infer("hot", inputs[1:])
    assert "StatusCode.INVALID_ARGUMENT" in missing.value.status()
    assert "inputs.rate" in missing.value.message()


def test_grpc_health_and_metadata(service: Service) -> None:
    client = grpcclient.InferenceServerClient(service.grpc_address)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("demo") and client.is_model_ready("demo", "2")
    server = client.get_server_metadata(as_json=True)
    http = httpx.get(f"{service.http_url}/v2", timeout=10).json()
    assert server["name"] == http["name"] and server["extensions"] == http["extensions"]
    metadata = client.get_model_metadata("demo", as_json=True)
    http_metadata = httpx.get(f"{service.http_url}/v2/models/demo", timeout=10).json()
    assert metadata["versions"] == http_metadata["versions"] == ["1", "2"]
    assert metadata["inputs"] == [{"name": "strain", "datatype": "FP64", "shape": ["-1"]}]
    assert [o["name"] for o in metadata["outputs"]] == [
        o["name"] for o in http_metadata["outputs"]]


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_grpc_infer_equals_native(service: Service, datatype: str) -> None:
    client = grpcclient.InferenceServerClient(service.grpc_address)
    tensor = STRAIN.astype(np.float64 if datatype == "FP64" else np.float32)
    strain = grpcclient.InferInput("strain", list(tensor.shape), datatype)
    strain.set_data_from_numpy(tensor)
    result = client.infer("demo", [strain], request_id="g-1",
                          outputs=[grpcclient.InferRequestedOutput(n) for n in OUTPUTS])
    assert_same(result, native(service, tensor.astype(np.float64)))
    response = result.get_response()
    assert response.model_version == "1" and response.id == "g-1"
    by_alias = client.infer("demo", [strain], parameters={"alias": "candidate"})
    by_version = client.infer("demo", [strain], model_version="2")
    expected = native(service, tensor.astype(np.float64), version=2)
    for result in (by_alias, by_version):
        assert result.get_response().model_version == "2"
        assert_same(result, expected)


def test_grpc_typed_contents_equal_raw_contents(service: Service) -> None:
    """The other way to send a tensor: typed fp64_contents instead of raw bytes."""
    request = service_pb2.ModelInferRequest(model_name="demo", model_version="")
    tensor = request.inputs.add(name="strain", datatype="FP64", shape=[len(STRAIN)])
    tensor.contents.fp64_contents.extend(STRAIN.tolist())
    request.outputs.add(name="mean")
    request.outputs.add(name="tangent")
    with grpc.insecure_channel(service.grpc_address) as channel:
        response, call = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer \
            .with_call(request, metadata=(("x-request-id", "typed-1"),))
    assert ("x-request-id", "typed-1") in call.trailing_metadata()
    assert [o.name for o in response.outputs] == ["mean", "tangent"]
    expected = httpx.post(f"{service.http_url}/v1/models/demo/predict",
                          json={"strain": STRAIN.tolist(), "tangent": True}, timeout=30).json()
    for index, name in enumerate(("mean", "tangent")):
        values = np.frombuffer(response.raw_output_contents[index], dtype="<f8")
        np.testing.assert_array_equal(values, expected[name])
    metrics = httpx.get(f"{service.http_url}/metrics", timeout=10).text
    assert ('surrogate_http_requests_total{method="GRPC",model="demo",'
            'route="/inference.GRPCInferenceService/ModelInfer",status="200",version="1"}'
            in metrics)


def grpc_error(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as error:
        call()
    return error.value


def test_grpc_errors_map_to_status_codes(service: Service) -> None:
    client = grpcclient.InferenceServerClient(service.grpc_address)

    def strain_input(values: np.ndarray, datatype: str = "FP64", name: str = "strain"):
        tensor = grpcclient.InferInput(name, [values.size], datatype)
        tensor.set_data_from_numpy(values)
        return tensor

    one = strain_input(np.array([0.1]))
    assert grpc_error(lambda: client.infer("nope", [one])).status() == "StatusCode.NOT_FOUND"
    assert grpc_error(lambda: client.infer("demo", [one], model_version="9")).status() \
        == "StatusCode.NOT_FOUND"
    assert grpc_error(lambda: client.is_model_ready("nope")).status() \
        == "StatusCode.NOT_FOUND"
    assert grpc_error(lambda: client.get_model_metadata("nope")).status() \
        == "StatusCode.NOT_FOUND"
    assert grpc_error(lambda: client.infer("x" * 129, [one])).status() \
        == "StatusCode.INVALID_ARGUMENT"
    for version in ("v1", "\u00b2", "9" * 5000):
        assert grpc_error(lambda v=version: client.infer("demo", [one], model_version=v)) \
            .status() == "StatusCode.INVALID_ARGUMENT", version
    bad_name = grpc_error(lambda: client.infer("demo", [strain_input(np.array([0.1]),
                                                                     name="x")]))
    assert bad_name.status() == "StatusCode.INVALID_ARGUMENT"
    assert "inputs[0].name" in bad_name.message()
    nan = grpc_error(lambda: client.infer("demo", [strain_input(np.array([0.1, np.nan]))]))
    assert nan.status() == "StatusCode.INVALID_ARGUMENT" and "[1]" in nan.message()
    reject = grpc_error(lambda: client.infer("demo", [strain_input(np.array([0.0, 0.9]))],
                                             parameters={"extrapolation": "reject"}))
    assert reject.status() == "StatusCode.INVALID_ARGUMENT"
    # Over the point limit (200 kB message) and over the message size (the byte limit).
    points = grpc_error(lambda: client.infer(
        "demo", [strain_input(np.zeros(MAX_POINTS + 1, np.float32), "FP32")]))
    assert points.status() == "StatusCode.RESOURCE_EXHAUSTED" and "limit" in points.message()
    size = grpc_error(lambda: client.infer(
        "demo", [strain_input(np.zeros(MAX_BYTES // 8 + 1))]))
    assert size.status() == "StatusCode.RESOURCE_EXHAUSTED"
    # And the service still answers.
    assert client.infer("demo", [one]).as_numpy("mean").shape == (1,)


@pytest.mark.parametrize("method,payload", [
    ("ModelInfer", b"\xff\xff\xff\xff garbage"),
    ("ModelInfer", b"\x0a\x05demo\x2a\x80"),  # a field cut off mid-length
    ("ModelMetadata", b"\x0a\xff\xff"),
    ("ServerLive", b"\x08"),
])
def test_a_malformed_protobuf_is_invalid_argument_without_an_error_log(
        service: Service, method: str, payload: bytes) -> None:
    with grpc.insecure_channel(service.grpc_address) as channel:
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
        with pytest.raises(grpc.RpcError) as error:
            call(payload, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    assert "not a valid inference." in error.value.details()
    time.sleep(0.2)  # the access line is written after the status is sent
    errors = [line for line in service.log.read_text().splitlines()
              if '"level": "error"' in line or "Traceback" in line]
    assert errors == []


def test_a_request_id_longer_than_http_allows_is_invalid_argument(service: Service) -> None:
    client = grpcclient.InferenceServerClient(service.grpc_address)
    strain = grpcclient.InferInput("strain", [1], "FP64")
    strain.set_data_from_numpy(np.array([0.1]))
    assert client.infer("demo", [strain], request_id="i" * 256).get_response().id == "i" * 256
    error = grpc_error(lambda: client.infer("demo", [strain], request_id="i" * 257))
    assert error.status() == "StatusCode.INVALID_ARGUMENT" and "id:" in error.message()
    http = httpx.post(f"{service.http_url}/v2/models/demo/infer", timeout=10, json={
        "id": "i" * 257, "inputs": [{"name": "strain", "shape": [1], "datatype": "FP64",
                                     "data": [0.1]}]})
    assert http.status_code == 422  # the same bound


def test_a_grpc_call_over_the_work_budget_is_resource_exhausted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed_registry(url, "demo", [random_artifact(draws=200, seed=71)])
    port, grpc_port = free_port(), free_port()
    running = ServerProcess.launch(
        service_command(port), port,
        {"SURROGATE_DATABASE_URL": url, "SURROGATE_GRPC_PORT": str(grpc_port),
         "SURROGATE_REQUEST_TIME_BUDGET_S": "0.01"}, tmp_path / "server.log")
    try:
        running.wait_until_ok("/readyz")
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        big = grpcclient.InferInput("strain", [100_000], "FP64")
        big.set_data_from_numpy(np.zeros(100_000))
        error = grpc_error(lambda: client.infer("demo", [big]))
        assert error.status() == "StatusCode.RESOURCE_EXHAUSTED"
        assert "reduce inputs[0].shape" in error.message()
        small = grpcclient.InferInput("strain", [10], "FP64")
        small.set_data_from_numpy(np.zeros(10))
        assert client.infer("demo", [small]).as_numpy("mean").shape == (10,)
    finally:
        running.stop()


def test_grpc_unavailable_when_the_registry_is_down_and_the_version_not_loaded(
        tmp_path: Path) -> None:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries not installed")
    database = PostgresServer.create(bin_dir)  # its own server: this test stops it
    try:
        database.start()
        seed_registry(database.url(), "demo", [random_artifact(seed=61),
                                               random_artifact(seed=62)])
        port, grpc_port = free_port(), free_port()
        running = ServerProcess.launch(
            service_command(port), port,
            {"SURROGATE_DATABASE_URL": database.url(), "SURROGATE_GRPC_PORT": str(grpc_port),
             "SURROGATE_GRPC_HOST": "127.0.0.1", "SURROGATE_DATABASE_TIMEOUT_S": "1"},
            tmp_path / "server.log")
        try:
            running.wait_until_ok("/readyz")
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
            strain = grpcclient.InferInput("strain", [2], "FP64")
            strain.set_data_from_numpy(np.array([0.1, 0.2]))
            expected = client.infer("demo", [strain]).as_numpy("mean")  # v1, production
            database.stop()
            # Loaded: still answers, still ready. Not loaded (v2 is served only by number):
            # UNAVAILABLE, not NOT_FOUND.
            np.testing.assert_array_equal(client.infer("demo", [strain]).as_numpy("mean"),
                                          expected)
            assert client.is_server_ready()
            error = grpc_error(lambda: client.infer("demo", [strain], model_version="2"))
            assert error.status() == "StatusCode.UNAVAILABLE", error
            assert "database" in error.message()
        finally:
            running.stop()
    finally:
        database.destroy()


_parameter_values = st.one_of(
    st.builds(lambda v: service_pb2.InferParameter(bool_param=v), st.booleans()),
    st.builds(lambda v: service_pb2.InferParameter(int64_param=v), st.integers(-2**63, 2**63 - 1)),
    st.builds(lambda v: service_pb2.InferParameter(string_param=v),
              st.sampled_from(["candidate", "production", "reject", "allow", "", "x" * 100])
              | st.text(max_size=8)),
    st.builds(lambda v: service_pb2.InferParameter(double_param=v), st.floats()))


@st.composite
def _grpc_requests(draw) -> service_pb2.ModelInferRequest:
    """Mostly well-formed requests (so many reach the numerics), some with parts off."""
    request = service_pb2.ModelInferRequest(
        model_name=draw(st.sampled_from(["demo"] * 6 + ["nope", ""])),
        model_version=draw(st.sampled_from([""] * 4 + ["1", "2", "9", "0", "-1", "x"])),
        id=draw(st.text(max_size=8)))
    count = draw(st.integers(1, 6) | st.just(0))
    finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-2.0, max_value=2.0)
    for _ in range(draw(st.sampled_from([1] * 8 + [0, 2]))):
        datatype = draw(st.sampled_from(["FP64"] * 4 + ["FP32"] * 4 + ["INT32", "BYTES"]))
        tensor = request.inputs.add(
            name=draw(st.sampled_from(["strain"] * 8 + ["x"])), datatype=datatype,
            shape=draw(st.sampled_from([[count]] * 4 + [[count, 1]] * 2 + [
                [count, 2], [], [-1], [2**40], [count, 1, 1], [count + 1]])))
        values = draw(st.lists(finite, min_size=count, max_size=count))
        if values and draw(st.integers(0, 5)) == 0:
            values[-1] = draw(st.sampled_from([np.nan, np.inf, 1e300]))
        if draw(st.booleans()):
            raw = np.asarray(values, "<f4" if datatype == "FP32" else "<f8").tobytes()
            request.raw_input_contents.append(raw + draw(st.sampled_from([b""] * 4 + [b"\0"])))
        elif datatype == "FP32":
            tensor.contents.fp32_contents.extend(values)
        else:
            tensor.contents.fp64_contents.extend(values)
    for key in draw(st.lists(st.sampled_from(["alias", "extrapolation", "other"]),
                             max_size=2, unique=True)):
        request.parameters[key].CopyFrom(draw(_parameter_values))
    for name in draw(st.lists(st.sampled_from(["mean", "tangent", "outside_training_domain",
                                               "x"]), max_size=2)):
        request.outputs.add(name=name)
    return request


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(request=_grpc_requests())
def test_arbitrary_grpc_requests_get_an_answer_or_a_client_error_code(
        service: Service, request: service_pb2.ModelInferRequest) -> None:
    with grpc.insecure_channel(service.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            response = stub.ModelInfer(request, timeout=30)
        except grpc.RpcError as error:
            assert error.code() in (grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.INVALID_ARGUMENT,
                                    grpc.StatusCode.RESOURCE_EXHAUSTED), error
            assert error.details()
            return
    assert response.model_name == "demo"
    assert len(response.raw_output_contents) == len(response.outputs) > 0


def test_grpc_server_not_ready_while_draining_yet_answering(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed_registry(url, "demo", [random_artifact(seed=71)])
    port, grpc_port = free_port(), free_port()
    running = ServerProcess.launch(service_command(port), port, {
        "SURROGATE_DATABASE_URL": url, "SURROGATE_GRPC_PORT": str(grpc_port),
        "SURROGATE_GRPC_HOST": "127.0.0.1", "SURROGATE_SHUTDOWN_DRAIN_S": "3"},
        tmp_path / "server.log")
    try:
        running.wait_until_ok("/readyz")
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        strain = grpcclient.InferInput("strain", [1], "FP64")
        strain.set_data_from_numpy(np.array([0.1]))
        assert client.is_server_ready()
        running.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while client.is_server_ready():  # the signal handler runs within milliseconds
            assert time.monotonic() < deadline, "gRPC readiness ignored the drain"
            time.sleep(0.05)
        assert client.infer("demo", [strain]).as_numpy("mean").shape == (1,)
        assert running.process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        running.stop()
