"""The Open Inference Protocol over HTTP through the real client (tritonclient.http)
against a live service: every combination of JSON and binary inputs and outputs, FP64 and
FP32, gives the native endpoint's numbers, also with covariate tensors for a model with
covariates; routing, limits and errors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as httpclient
from surrogate_client import SurrogateAPIError, SurrogateClient
from tritonclient.utils import InferenceServerException

from tests.oip_live import (
    HOT_OUTPUTS,
    HOT_RATE,
    HOT_STRAIN,
    HOT_TEMPERATURE,
    MAX_BYTES,
    MAX_POINTS,
    NUMERIC,
    OUTPUTS,
    STRAIN,
    Service,
    assert_same,
    hot_native,
    live_service,
    native,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, covariate_fit) -> Iterator[Service]:
    with live_service(tmp_path_factory.mktemp("oip-live"),
                      covariate_fit.artifact) as running:
        yield running


@pytest.mark.parametrize("binary_in", [False, True])
def test_http_infer_with_covariate_tensors_equals_native(service: Service,
                                                         binary_in: bool) -> None:
    client = httpclient.InferenceServerClient(service.http_address)
    metadata = client.get_model_metadata("hot")
    assert [i["name"] for i in metadata["inputs"]] == ["strain", "temperature", "rate"]
    inputs = []
    for name, values, datatype in (("strain", HOT_STRAIN, "FP64"),
                                   ("temperature", np.array([HOT_TEMPERATURE]), "FP64"),
                                   ("rate", HOT_RATE.astype(np.float32), "FP32")):
        tensor = httpclient.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary_in)
        inputs.append(tensor)
    result = client.infer("hot", inputs, outputs=[
        httpclient.InferRequestedOutput(n, binary_data=not binary_in) for n in HOT_OUTPUTS])
    # The FP32 rates as the client's tensor holds them.
    assert_same(result, hot_native(service, HOT_RATE.astype(np.float32).astype(np.float64)),
                HOT_OUTPUTS)
    assert result.as_numpy("outside_training_domain")[-1]  # rate 0.15: beyond the tests


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
@pytest.mark.parametrize("binary_in,binary_out", [
    (False, False), (False, True), (True, False), (True, True)])
def test_http_infer_in_every_binary_combination_equals_native(
        service: Service, datatype: str, binary_in: bool, binary_out: bool) -> None:
    client = httpclient.InferenceServerClient(service.http_address)
    tensor = STRAIN.astype(np.float64 if datatype == "FP64" else np.float32)
    strain = httpclient.InferInput("strain", list(tensor.shape), datatype)
    strain.set_data_from_numpy(tensor, binary_data=binary_in)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary_out) for n in OUTPUTS]
    result = client.infer("demo", [strain], outputs=outputs, request_id="r-1")
    # What the client sent: the FP32 tensor's values, exactly, for FP32.
    expected = native(service, tensor.astype(np.float64))
    assert_same(result, expected)
    for name in NUMERIC:  # and within 1e-6 of the FP64 strains' answer
        np.testing.assert_allclose(result.as_numpy(name), native(service, STRAIN)[name],
                                   rtol=1e-6, atol=1e-9 if datatype == "FP32" else 0)
    response = result.get_response()
    assert response["model_version"] == "1" and response["id"] == "r-1"
    assert result.as_numpy("outside_training_domain").dtype == np.bool_
    assert result.as_numpy("outside_training_domain").any()
    binary_outputs = [o for o in response["outputs"] if "binary_data_size" in
                      (o.get("parameters") or {})]
    assert len(binary_outputs) == (len(OUTPUTS) if binary_out else 0)


def test_http_default_outputs_come_back_binary_and_versions_and_aliases_route(
        service: Service) -> None:
    client = httpclient.InferenceServerClient(service.http_address)
    strain = httpclient.InferInput("strain", [len(STRAIN), 1], "FP64")
    strain.set_data_from_numpy(STRAIN.reshape(-1, 1))
    # No outputs named: tritonclient asks binary_data_output; every default output returns.
    result = client.infer("demo", [strain])
    assert [o["name"] for o in result.get_response()["outputs"]] == OUTPUTS
    assert result.as_numpy("mean").shape == (len(STRAIN), 1)
    np.testing.assert_array_equal(result.as_numpy("mean").ravel(),
                                  native(service, STRAIN)["mean"])
    by_version = client.infer("demo", [strain], model_version="2")
    by_alias = client.infer("demo", [strain], parameters={"alias": "candidate"})
    expected = native(service, STRAIN, version=2)
    for result in (by_version, by_alias):
        assert result.get_response()["model_version"] == "2"
        np.testing.assert_array_equal(result.as_numpy("total_sd").ravel(),
                                      expected["total_sd"])


def test_http_health_metadata_and_errors(service: Service) -> None:
    client = httpclient.InferenceServerClient(service.http_address)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("demo") and client.is_model_ready("demo", "2")
    assert not client.is_model_ready("nope")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    assert client.get_model_metadata("demo")["versions"] == ["1", "2"]
    strain = httpclient.InferInput("strain", [1], "FP64")
    strain.set_data_from_numpy(np.array([0.1]))
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("nope", [strain])
    assert unknown.value.status() == "404"
    big = np.zeros(MAX_POINTS + 1, dtype=np.float32)  # 200 kB: under the byte limit
    over = httpclient.InferInput("strain", [big.size], "FP32")
    over.set_data_from_numpy(big)
    with pytest.raises(InferenceServerException) as too_many:
        client.infer("demo", [over])
    assert too_many.value.status() == "413" and "limit" in str(too_many.value.message())
    huge = httpclient.InferInput("strain", [MAX_BYTES // 8 + 1], "FP64")
    huge.set_data_from_numpy(np.zeros(MAX_BYTES // 8 + 1))  # the binary part alone > limit
    with pytest.raises(InferenceServerException) as too_big:
        client.infer("demo", [huge])
    assert too_big.value.status() == "413" and "bytes" in str(too_big.value.message())


def test_python_client_predicts_and_exports_at_a_condition(service: Service) -> None:
    """The project's own client passes covariates (a number, or one value per strain) and
    the export's condition options through to the service."""
    expected = hot_native(service)
    with SurrogateClient(service.http_url, timeout=60) as client:
        answer = client.predict("hot", HOT_STRAIN, covariates={
            "temperature": HOT_TEMPERATURE, "rate": HOT_RATE})
        np.testing.assert_array_equal(answer.mean, expected["mean"])
        np.testing.assert_array_equal(answer.epistemic_sd, expected["epistemic_sd"])
        condition = {"temperature": HOT_TEMPERATURE, "rate": float(HOT_RATE[0])}
        table = client.export("hot", points=9, covariates=condition)
        at_grid = client.predict("hot", table.strain, covariates=condition)
        np.testing.assert_allclose(table["mean"], at_grid.mean, rtol=1e-12)
        with pytest.raises(SurrogateAPIError) as missing:
            client.export("hot", points=9)
        assert missing.value.status == 422
        assert "covariates" in missing.value.details[0]["field"]
