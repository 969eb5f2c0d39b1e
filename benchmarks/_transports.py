"""One large batch through each transport of the service, for benchmarks/http.py: native
JSON, the Open Inference Protocol over HTTP with binary tensors, and over gRPC.

Each figure is the best of `repeats` wall times from sending the request to holding the
outputs as numpy arrays in the client (the request body pre-encoded where the client
allows it), so transport, server-side encoding and client-side decoding all count.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import numpy as np
import orjson
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from benchmarks._server import LIGHT_MODEL, MODEL, Server

OUTPUTS = ("mean", "aleatoric_sd", "epistemic_sd", "total_sd", "outside_training_domain")


def _best(repeats: int,
          call: Callable[[], tuple[dict, int, int]]) -> tuple[float, dict, int, int]:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        arrays, sent, received = call()
        best = min(best, time.perf_counter() - started)
    return best, arrays, sent, received


def compare(server: Server, n: int = 100_000, repeats: int = 5) -> None:
    """The table for the benchmark model, then for a 10-draw one (transport-bound)."""
    _compare(server, MODEL, f"{server.artifact.draws} draws", n, repeats)
    _compare(server, LIGHT_MODEL, "10 draws: prediction cheap, transport costs show", n,
             repeats)


def _compare(server: Server, model: str, label: str, n: int, repeats: int) -> None:
    strain = np.random.default_rng(0).uniform(-0.5, 0.5, n)
    native_body = orjson.dumps({"strain": strain}, option=orjson.OPT_SERIALIZE_NUMPY)
    header = orjson.dumps({
        "inputs": [{"name": "strain", "shape": [n], "datatype": "FP64",
                    "parameters": {"binary_data_size": 8 * n}}],
        "parameters": {"binary_data_output": True}})
    binary_body = header + strain.astype("<f8").tobytes()
    oip_url = f"{server.base_url}/v2/models/{model}/infer"
    native_url = f"{server.base_url}/v1/models/{model}/predict"

    with httpx.Client(timeout=120) as http:
        def native() -> tuple[dict, int, int]:
            response = http.post(native_url, content=native_body,
                                 headers={"content-type": "application/json"})
            body = orjson.loads(response.content)
            return ({k: np.asarray(body[k]) for k in OUTPUTS}, len(native_body),
                    len(response.content))

        def oip_binary() -> tuple[dict, int, int]:
            response = http.post(oip_url, content=binary_body, headers={
                "inference-header-content-length": str(len(header))})
            length = int(response.headers["inference-header-content-length"])
            document, offset, arrays = orjson.loads(response.content[:length]), length, {}
            for output in document["outputs"]:
                size = output["parameters"]["binary_data_size"]
                dtype = "?" if output["datatype"] == "BOOL" else "<f8"
                arrays[output["name"]] = np.frombuffer(response.content, dtype, n, offset)
                offset += size
            return arrays, len(binary_body), len(response.content)

        triton_http = httpclient.InferenceServerClient(server.base_url.removeprefix("http://"))
        triton_grpc = grpcclient.InferenceServerClient(server.grpc_address)

        def tritonclient_http() -> tuple[dict, int, int]:
            tensor = httpclient.InferInput("strain", [n], "FP64")
            tensor.set_data_from_numpy(strain)
            result = triton_http.infer(model, [tensor])
            return {k: result.as_numpy(k) for k in OUTPUTS}, len(binary_body), 0

        def tritonclient_grpc() -> tuple[dict, int, int]:
            tensor = grpcclient.InferInput("strain", [n], "FP64")
            tensor.set_data_from_numpy(strain)
            result = triton_grpc.infer(model, [tensor])
            return ({k: result.as_numpy(k) for k in OUTPUTS}, 8 * n,
                    result.get_response().ByteSize())

        runs = [("native JSON (httpx + orjson)", native),
                ("OIP HTTP binary (httpx + numpy)", oip_binary),
                ("OIP HTTP binary (tritonclient.http)", tritonclient_http),
                ("OIP gRPC (tritonclient.grpc)", tritonclient_grpc)]
        print(f"  {n} strains in one request ({label}), best of {repeats}, from sending "
              f"to numpy arrays in the client:")
        baseline, reference = None, None
        for label, call in runs:
            call()  # warm-up (connections, first-use costs)
            best, arrays, sent, received = _best(repeats, call)
            reference = reference or arrays
            for key in OUTPUTS:  # every transport must carry the same numbers
                np.testing.assert_array_equal(arrays[key], reference[key], err_msg=key)
            baseline = baseline or best
            sizes = (f"request {sent / 1e6:4.1f} MB, response "
                     f"{received / 1e6:4.1f} MB" if received else
                     f"request {sent / 1e6:4.1f} MB, response (as above)")
            print(f"    {label:<38} {best * 1e3:>6.0f} ms  ({sizes})  "
                  f"native/this {baseline / best:.1f}x")
        triton_http.close()
        triton_grpc.close()
