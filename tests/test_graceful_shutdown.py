"""Graceful shutdown of one replica: on SIGTERM /readyz turns 503 at once, every other
request is still answered (closing its connection) for SURROGATE_SHUTDOWN_DRAIN_S, then
the listener closes, the request in flight finishes, and the process exits."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.service_process import (
    ServerProcess,
    free_port,
    random_artifact,
    seed_registry,
    service_command,
)

DRAIN_S = 3.0  # generous: a busy machine must still fit requests inside it


def test_readiness_says_draining_and_responses_close_their_connection(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed_registry(url, "steel", [random_artifact(draws=20)])
    app = create_app(Settings(database_url=url))
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and "connection" not in ready.headers
        app.state.drain.begin()
        draining = client.get("/readyz")
        assert draining.status_code == 503 and draining.json()["status"] == "draining"
        predicted = client.post("/v1/models/steel/predict", json={"strain": [0.1]})
        assert predicted.status_code == 200  # still served, on the fast path too
        assert predicted.headers["connection"] == "close"
        assert client.get("/v1/models").headers["connection"] == "close"


def test_sigterm_drains_then_finishes_the_request_in_flight_and_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed_registry(url, "steel", [random_artifact(draws=20)])
    port = free_port()
    server = ServerProcess.launch(service_command(port), port, {
        "SURROGATE_DATABASE_URL": url, "SURROGATE_SHUTDOWN_DRAIN_S": str(DRAIN_S),
        "SURROGATE_LOG_FORMAT": "text"}, tmp_path / "replica.log")
    in_flight: dict[str, object] = {}

    def request_in_flight_across_the_drain() -> None:
        """A predict whose body arrives half before the drain ends, half after: the
        request is in flight when the listener closes."""
        body = json.dumps({"strain": np.linspace(-0.4, 0.4, 2000).tolist()}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.putrequest("POST", "/v1/models/steel/predict")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        connection.send(body[:1000])
        time.sleep(max(0.0, signalled + DRAIN_S + 0.5 - time.monotonic()))
        in_flight["rest_sent_after_drain"] = time.monotonic() - signalled > DRAIN_S
        connection.send(body[1000:])
        response = connection.getresponse()
        in_flight["status"] = response.status
        in_flight["points"] = len(json.loads(response.read())["mean"])
        connection.close()

    try:
        server.wait_until_ok("/readyz")
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/readyz").status_code == 503
            worker = threading.Thread(target=request_in_flight_across_the_drain)
            worker.start()
            answered = 0
            while answered == 0 or time.monotonic() - signalled < DRAIN_S - 1.0:
                assert client.post("/v1/models/steel/predict",
                                   json={"strain": [0.0]}).status_code == 200
                answered += 1
                time.sleep(0.05)
        code = server.process.wait(timeout=120)
        exited = time.monotonic()
        worker.join(timeout=120)
    finally:
        server.stop()
    assert answered > 0
    # Still in flight when the drain ended and the listener closed, yet answered in full.
    assert in_flight == {"rest_sent_after_drain": True, "status": 200, "points": 2000}
    assert exited - signalled >= DRAIN_S + 0.5
    assert code in (0, -signal.SIGTERM)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=2)
    log = server.log.read_text()
    assert log.index("draining for 3.0 s") < log.index("drained; closing the listener")


def _grpc_call(address: str, strain: np.ndarray) -> tuple[str, float]:
    """One ModelInfer: ('ok' or its status code, when it ended)."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(address)
    tensor = grpcclient.InferInput("strain", [len(strain)], "FP64")
    tensor.set_data_from_numpy(strain)
    try:
        answer = client.infer("steel", [tensor], client_timeout=120)
        outcome = "ok" if answer.as_numpy("mean").shape == strain.shape else "short"
    except InferenceServerException as exc:
        outcome = str(exc.status())
    finally:
        client.close()
    return outcome, time.monotonic()


def test_sigterm_closes_grpc_with_http_and_calls_in_flight_on_both_finish(
        tmp_path: Path) -> None:
    """At the end of the drain both listeners close at once, even while an HTTP request is
    in flight (gRPC used to keep accepting until HTTP was done), and gRPC calls in flight
    then finish in full (they used to get 5 s, then UNAVAILABLE)."""
    from concurrent.futures import ThreadPoolExecutor

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed_registry(url, "steel", [random_artifact(draws=1000, hidden_sizes=(32,))])
    port, grpc_port = free_port(), free_port()
    address = f"127.0.0.1:{grpc_port}"
    server = ServerProcess.launch(service_command(port), port, {
        "SURROGATE_DATABASE_URL": url, "SURROGATE_SHUTDOWN_DRAIN_S": str(DRAIN_S),
        "SURROGATE_SHUTDOWN_GRACE_S": "90", "SURROGATE_GRPC_PORT": str(grpc_port),
        "SURROGATE_MAX_HEAVY_REQUESTS": "4",  # the three calls in flight at once
        "SURROGATE_LOG_FORMAT": "text"}, tmp_path / "replica.log")
    try:
        server.wait_until_ok("/readyz", timeout_s=120)
        # Calls that take ~2 s here, whatever the machine's load.
        started = time.monotonic()
        assert _grpc_call(address, np.linspace(-0.4, 0.4, 20_000))[0] == "ok"
        points = int(min(1_000_000, 20_000 * max(1.0, 2.0 / (time.monotonic() - started))))
        strain = np.linspace(-0.4, 0.4, points)
        body = json.dumps({"strain": [0.1] * 100}).encode()
        http_call = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        http_call.putrequest("POST", "/v1/models/steel/predict")
        http_call.putheader("Content-Type", "application/json")
        http_call.putheader("Content-Length", str(len(body)))
        http_call.endheaders()
        http_call.send(body[:10])  # in flight across the end of the drain

        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            time.sleep(max(0.0, signalled + DRAIN_S - 0.3 - time.monotonic()))
            in_flight = [pool.submit(_grpc_call, address, strain) for _ in range(3)]
            time.sleep(max(0.0, signalled + DRAIN_S + 0.7 - time.monotonic()))
            late, refused_at = _grpc_call(address, strain[:10])
            http_call.send(body[10:])
            response = http_call.getresponse()
            http_status = response.status
            http_call.close()
            outcomes = [call.result() for call in in_flight]
        code = server.process.wait(timeout=120)
    finally:
        server.stop()
    assert late == "StatusCode.UNAVAILABLE"  # gRPC no longer accepted, HTTP still in flight
    assert http_status == 200
    assert [outcome for outcome, _ in outcomes] == ["ok"] * 3
    assert all(ended > refused_at for _, ended in outcomes)  # in flight when it closed
    assert code in (0, -signal.SIGTERM)
