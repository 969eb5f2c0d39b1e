"""Request bodies are bounded however they arrive: byte counts on chunked bodies, bad input
refused at the cost of its first error, malformed JSON always a 422, and connections that
dribble their headers or body are closed."""

from __future__ import annotations

import http.client
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.main import create_app
from service.registry.writes import register, set_alias
from service.settings import Settings
from tests.live_server import LiveServer, live_server
from tests.service_process import random_artifact

LIMIT = 100_000
TOKEN = "tok-for-limit-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("limits"),
                     SURROGATE_MAX_REQUEST_BYTES=str(LIMIT),
                     SURROGATE_MAX_UPLOAD_BYTES=str(LIMIT),
                     SURROGATE_ADMIN_TOKEN=TOKEN,
                     SURROGATE_HEADER_TIMEOUT_S="1",
                     SURROGATE_BODY_TIMEOUT_S="1") as running:
        yield running


def send_chunked(server: LiveServer, path: str, chunks: Iterator[bytes],
                 content_type: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(server.base_url.removeprefix("http://"),
                                            timeout=30)
    try:
        connection.request("POST", path, body=chunks, encode_chunked=True,
                           headers={"content-type": content_type,
                                    "authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        return response.status, response.read()
    except (BrokenPipeError, ConnectionResetError):
        # The server may answer and close before the client finished sending: read the
        # answer it left in the socket.
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def strain_json(prefix: bytes, points: int, suffix: bytes) -> Iterator[bytes]:
    """A valid JSON body of `points` strains, in chunks of 1,000 values."""
    yield prefix
    for start in range(0, points, 1_000):
        values = ", ".join(["0.125"] * min(1_000, points - start)).encode()
        yield (b", " if start else b"") + values
    yield suffix


@pytest.mark.parametrize("path,prefix,suffix", [
    ("/v1/models/demo/predict", b'{"strain": [', b"]}"),
    ("/v2/models/demo/infer",
     b'{"inputs": [{"name": "strain", "shape": [200000], "datatype": "FP64", "data": [',
     b"]}]}"),
])
def test_a_chunked_body_over_the_limit_is_a_413(server: LiveServer, path: str,
                                                prefix: bytes, suffix: bytes) -> None:
    status, content = send_chunked(server, path, strain_json(prefix, 200_000, suffix),
                                   "application/json")
    assert status == 413, content[:300]
    assert b"payload_too_large" in content
    small_status, _ = send_chunked(server, path, strain_json(
        prefix.replace(b"200000", b"10"), 10, suffix), "application/json")
    assert small_status == 200


def test_a_chunked_upload_over_the_limit_is_a_413(server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(300):
            yield b"\0" * 1_000
    status, content = send_chunked(server, "/admin/models/steel/versions", chunks(),
                                   "application/octet-stream")
    assert status == 413, content[:300]


def _socket_to(server: LiveServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=8)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server ended the connection within `seconds`, and what it sent."""
    received = b""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


def test_a_client_that_never_finishes_its_headers_is_disconnected(server: LiveServer) -> None:
    with _socket_to(server) as sock:
        sock.sendall(b"POST /v1/models/demo/predict HTTP/1.1\r\nHost: x\r\n")
        closed, _ = _closed_within(sock, 6.0)
    assert closed, "the server kept a half-sent request's connection open"
    assert server.alive()


def test_a_client_that_never_finishes_its_body_gets_a_408(server: LiveServer) -> None:
    with _socket_to(server) as sock:
        sock.sendall(b"POST /v1/models/demo/predict HTTP/1.1\r\nHost: x\r\n"
                     b"content-type: application/json\r\ncontent-length: 100\r\n\r\n"
                     b'{"strain": [')
        closed, received = _closed_within(sock, 6.0)
    assert closed, "the server kept waiting for a body that never came"
    assert received.startswith(b"HTTP/1.1 408"), received[:200]


def _head_answer(server: LiveServer, head: bytes) -> tuple[bool, bytes]:
    """Send a request head (in pieces, as a slow or hostile client would), then read."""
    with _socket_to(server) as sock:
        try:
            for start in range(0, len(head), 65_536):
                sock.sendall(head[start:start + 65_536])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the head was all sent
        return _closed_within(sock, 6.0)


def _get(path: bytes, headers: list[bytes], body: bytes = b"") -> bytes:
    return (b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(
        h + b"\r\n" for h in headers) + b"connection: close\r\n\r\n" + body)


@pytest.mark.parametrize("head,field", [
    (_get(b"/healthz", [b"x-big: " + b"a" * 8_000_000]), b"max_head_bytes"),
    (_get(b"/healthz?" + b"q" * 100_000, []), b"max_head_bytes"),
    (_get(b"/healthz", [b"x-h%d: 1" % i for i in range(20_000)]), b"max_header_count"),
    (_get(b"/healthz", [b"x-h%d: 1" % i for i in range(101)]), b"max_header_count"),
])
def test_a_request_head_over_the_limits_is_a_431_and_the_connection_closes(
        server: LiveServer, head: bytes, field: bytes) -> None:
    started = time.monotonic()
    closed, received = _head_answer(server, head)
    assert closed
    assert received.startswith(b"HTTP/1.1 431"), received[:200]
    assert field in received
    assert time.monotonic() - started < 3.0  # refused at the limit, not after parsing it all
    assert server.alive()


def test_a_head_within_the_limits_is_served_with_its_body(server: LiveServer) -> None:
    body = b'{"strain": [0.1, 0.2]}'
    head = (b"POST /v1/models/demo/predict HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"x-h%d: 1\r\n" % i for i in range(95))
            + b"x-pad: " + b"p" * 12_000 + b"\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body))
    closed, received = _head_answer(server, head + body)  # head and body in one write
    assert closed and received.startswith(b"HTTP/1.1 200"), received[:300]
    assert b'"mean"' in received


@pytest.fixture
def demo(session: Session) -> None:
    register(session, "demo", random_artifact(seed=1).to_bytes(), actor="test")
    set_alias(session, "demo", "production", 1, actor="test")
    session.commit()


@pytest.fixture
def client(settings: Settings, demo) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


MILLION_STRINGS = b'{"strain": [' + b", ".join([b'"0.1"'] * 1_000_000) + b"]}"
MILLION_STRING_TENSOR = (b'{"inputs": [{"name": "strain", "shape": [1000000], '
                         b'"datatype": "FP64", "data": [' + MILLION_STRINGS[12:-2] + b"]}]}")


@pytest.mark.parametrize("path,body,field", [
    ("/v1/models/demo/predict", MILLION_STRINGS, "strain[0]"),
    ("/v2/models/demo/infer", MILLION_STRING_TENSOR, "inputs[0].data[0]"),
])
def test_a_million_bad_values_cost_their_first_error_not_a_million(
    client: TestClient, path: str, body: bytes, field: str
) -> None:
    tracemalloc.start()
    try:
        response = client.post(path, content=body,
                               headers={"content-type": "application/json"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"].startswith(field), error["message"][:200]
    assert len(error["details"]) <= 20
    # Parsing the 7 MB body once costs ~60 MB of Python objects; one error per value
    # costs gigabytes.
    assert peak < 250e6, f"peak Python memory {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("path", ["/v1/models/demo/predict", "/v2/models/demo/infer"])
@pytest.mark.parametrize("body", [
    b'{"strain": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"strain": [0.1], "version": ' + b"9" * 5_000 + b"}",
    b'{"strain": [' + b"1" * 5_000 + b"]}",
])
def test_json_too_deep_or_numbers_too_long_are_a_422(client: TestClient, path: str,
                                                     body: bytes) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["error"]["code"] == "invalid_input"


def test_many_unknown_fields_are_one_error(client: TestClient) -> None:
    body = b'{"strain": [0.1], ' + b", ".join(
        b'"k%d": 1' % i for i in range(200_000)) + b"}"
    tracemalloc.start()
    try:
        response = client.post("/v1/models/demo/predict", content=body,
                               headers={"content-type": "application/json"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 422
    assert peak < 100e6, f"peak Python memory {peak / 1e6:.0f} MB"
    assert len(response.json()["error"]["details"]) <= 20
    assert "k0" in response.json()["error"]["message"]


def test_the_lean_path_and_the_route_agree_on_bad_values(database_url: str, demo,
                                                         tmp_path: Path) -> None:
    answers = []
    for fast in (True, False):
        with TestClient(create_app(Settings(database_url=database_url,
                                            fast_predict=fast))) as test_client:
            answers.append(test_client.post(
                "/v1/models/demo/predict", content=b'{"strain": [0.1, "x", "y"]}',
                headers={"content-type": "application/json"}).content)
    assert answers[0] == answers[1]
