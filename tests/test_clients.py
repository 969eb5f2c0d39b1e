"""The Python client and the C example get correct answers from a running service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from surrogate_client import SurrogateAPIError, SurrogateClient, predict

from service.inference.posterior import Posterior
from tests.live_server import PROJECT_ROOT, LiveServer, live_server

STRAINS = np.array([-0.45, -0.2, 0.0, 0.2, 0.45, 0.6])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("clients")) as running:
        yield running


def test_python_client_returns_numpy_arrays_equal_to_the_posterior(
    server: LiveServer,
) -> None:
    result = predict("demo", STRAINS, base_url=server.base_url)
    expected = Posterior(server.artifacts[1]).predict(STRAINS)
    assert (result.model, result.version) == ("demo", 1)
    assert isinstance(result.mean, np.ndarray) and result.mean.dtype == np.float64
    for name in ("mean", "aleatoric_sd", "epistemic_sd", "total_sd"):
        np.testing.assert_allclose(getattr(result, name), getattr(expected, name),
                                   rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(result.outside_training_domain, np.abs(STRAINS) > 0.5)


def test_python_client_options(server: LiveServer) -> None:
    with SurrogateClient(server.base_url, timeout=10) as client:
        other = client.predict("demo", STRAINS, version=2, tangent=True,
                               quantiles=[0.05, 0.95])
        expected = Posterior(server.artifacts[2]).predict(STRAINS, tangent=True)
        assert other.version == 2
        np.testing.assert_allclose(other.tangent, expected.tangent, rtol=1e-12)
        assert other.quantiles.shape == (2, STRAINS.size)
        assert np.all(other.quantiles[0] < other.mean) and np.all(other.mean < other.quantiles[1])
        first = client.predict("demo", [0.1, 0.2], draws=20, seed=5)
        again = client.predict("demo", [0.1, 0.2], draws=20, seed=5)
        assert first.samples.shape == (2, 20)
        np.testing.assert_array_equal(first.samples, again.samples)
        with pytest.raises(SurrogateAPIError) as unknown:
            client.predict("nope", [0.1])
        assert (unknown.value.status, unknown.value.code) == (404, "not_found")
        with pytest.raises(SurrogateAPIError) as rejected:
            client.predict("demo", [0.1, 0.9], extrapolation="reject")
        assert rejected.value.status == 422
        assert rejected.value.details[0]["field"] == "strain[1]"


class _Flaky(BaseHTTPRequestHandler):
    """A real HTTP server that fails the first `failures` requests with `status`, sleeps
    `delay` seconds per request, then answers a fixed prediction."""

    failures, status, delay, calls = 0, 503, 0.0, 0
    retry_after: str | None = None
    answer = {"model": "demo", "version": 1, "strain": [0.0], "mean": [1.0],
              "aleatoric_sd": [0.1], "epistemic_sd": [0.2], "total_sd": [0.25]}

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["content-length"]))
        type(self).calls += 1
        time.sleep(self.delay)
        if type(self).calls <= self.failures:
            body = json.dumps({"error": {"code": "unavailable", "message": "try again",
                                         "details": []}}).encode()
            self.send_response(self.status)
            if self.retry_after is not None:
                self.send_header("retry-after", self.retry_after)
        else:
            body = json.dumps(self.answer).encode()
            self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # the timeout test hangs up on purpose: a broken pipe is expected


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Flaky", (_Flaky,), {"calls": 0})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_python_client_retries_unavailable_answers(flaky) -> None:
    url, handler = flaky
    handler.failures = 2
    result = predict("demo", [0.0], base_url=url, retries=3)
    assert handler.calls == 3 and result.mean.tolist() == [1.0]


def test_python_client_does_not_retry_client_errors(flaky) -> None:
    url, handler = flaky
    handler.failures, handler.status = 5, 422
    with pytest.raises(SurrogateAPIError) as error:
        predict("demo", [0.0], base_url=url, retries=3)
    assert handler.calls == 1 and error.value.status == 422


def test_python_client_times_out_and_does_not_send_the_work_again(flaky) -> None:
    url, handler = flaky
    handler.delay = 2.0
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        predict("demo", [0.0], base_url=url, timeout=0.3, retries=3)
    assert handler.calls == 1 and time.monotonic() - start < 1.9


@pytest.mark.parametrize("status", [504, 413])
def test_python_client_does_not_retry_a_gateway_timeout_or_an_over_budget_request(
        flaky, status: int) -> None:
    url, handler = flaky
    handler.failures, handler.status = 5, status
    with pytest.raises(SurrogateAPIError) as error:
        predict("demo", [0.0], base_url=url, retries=3)
    assert handler.calls == 1 and error.value.status == status


def test_python_client_waits_as_long_as_retry_after_says(flaky) -> None:
    url, handler = flaky
    handler.failures, handler.retry_after = 1, "1"
    start = time.monotonic()
    with SurrogateClient(url, retries=3, backoff=0.01, max_backoff=5.0) as client:
        assert client.predict("demo", [0.0]).mean.tolist() == [1.0]
    assert handler.calls == 2 and time.monotonic() - start >= 1.0


def test_python_client_gives_up_when_retry_after_is_longer_than_its_patience(flaky) -> None:
    url, handler = flaky
    handler.failures, handler.retry_after = 5, "30"
    start = time.monotonic()
    with pytest.raises(SurrogateAPIError) as error:
        predict("demo", [0.0], base_url=url, retries=3)
    assert handler.calls == 1 and error.value.status == 503
    assert time.monotonic() - start < 5.0


def test_python_client_backs_off_between_retries_of_503(flaky) -> None:
    url, handler = flaky
    handler.failures = 3
    start = time.monotonic()
    with SurrogateClient(url, retries=3, backoff=0.2, max_backoff=5.0) as client:
        client.predict("demo", [0.0])
    # Waits of 0.2, 0.4 and 0.8 s, each jittered down to half at most.
    assert handler.calls == 4 and time.monotonic() - start >= 0.7


def _c_toolchain_ready() -> bool:
    # curl-config ships with the libcurl development package (headers + library).
    return shutil.which("cc") is not None and shutil.which("curl-config") is not None


@pytest.fixture(scope="module")
def c_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _c_toolchain_ready():
        if os.environ.get("CI"):
            pytest.fail("CI needs cc and libcurl4-openssl-dev (scripts/system-deps.sh)")
        pytest.skip("needs cc and libcurl headers (apt-get install libcurl4-openssl-dev)")
    out = tmp_path_factory.mktemp("c") / "predict"
    subprocess.run(["make", "-s", f"OUT={out}"], cwd=PROJECT_ROOT / "clients" / "c",
                   check=True, capture_output=True, text=True)
    return out


def test_c_example_gets_the_services_numbers(server: LiveServer, c_client: Path) -> None:
    run = subprocess.run([str(c_client), "--tangent", server.base_url, "demo",
                          *map(repr, STRAINS.tolist())],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    table = np.loadtxt(run.stdout.splitlines(), ndmin=2)
    expected = Posterior(server.artifacts[1]).predict(STRAINS, tangent=True)
    np.testing.assert_array_equal(table[:, 0], STRAINS)
    for column, name in enumerate(
            ("mean", "aleatoric_sd", "epistemic_sd", "total_sd", "tangent"), start=1):
        np.testing.assert_allclose(table[:, column], getattr(expected, name), rtol=1e-12,
                                   err_msg=name)


def test_c_example_reports_the_services_error(server: LiveServer, c_client: Path) -> None:
    run = subprocess.run([str(c_client), server.base_url, "nope", "0.1"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "404" in run.stderr and "not registered" in run.stderr


def test_python_client_export_returns_the_table_and_writes_files(
    server: LiveServer, tmp_path: Path
) -> None:
    with SurrogateClient(server.base_url, timeout=60) as client:
        table = client.export("demo", points=501, quantiles=[0.05, 0.95])
        assert (table.model, table.version, table.strain.size) == ("demo", 1, 501)
        assert table.columns["mean"].dtype == np.float64
        assert list(table.columns)[-2:] == ["q0.05", "q0.95"]
        expected = Posterior(server.artifacts[1]).predict(table.strain)
        np.testing.assert_allclose(table["mean"], expected.mean, rtol=1e-12)
        inside = np.linspace(-0.49, 0.49, 97)
        error = np.abs(table.interpolate(inside) - Posterior(server.artifacts[1]).predict(
            inside).mean) / Posterior(server.artifacts[1]).predict(inside).total_sd
        assert error.max() <= table.max_interpolation_error
        written = client.export("demo", path=tmp_path / "demo.k", points=11)
        assert written.read_text().startswith("*KEYWORD") and written.name == "demo.k"
        written = client.export("demo", path=tmp_path / "demo.txt", format="abaqus",
                                points=11)
        assert "*HYPERELASTIC, MARLOW" in written.read_text()
        with pytest.raises(SurrogateAPIError) as bad:
            client.export("demo", points=0)
        assert bad.value.status == 422 and "points" in bad.value.details[0]["field"]


def test_c_example_interpolates_the_downloaded_table(server: LiveServer,
                                                     c_client: Path) -> None:
    strains = np.array([-0.5, -0.3333, 0.0, 0.1234567, 0.5])
    run = subprocess.run([str(c_client), "--table", "points=201", server.base_url, "demo",
                          *map(repr, strains.tolist())],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    local = np.loadtxt(run.stdout.splitlines(), ndmin=2)
    table = predict_table(server, 201)
    np.testing.assert_array_equal(local[:, 0], strains)
    for column, name in enumerate(("mean", "aleatoric_sd", "epistemic_sd", "total_sd",
                                   "tangent"), start=1):
        np.testing.assert_allclose(local[:, column], table.interpolate(strains, name),
                                   rtol=1e-12, atol=1e-15, err_msg=name)


def predict_table(server: LiveServer, points: int):
    with SurrogateClient(server.base_url, timeout=60) as client:
        return client.export("demo", points=points)


def test_c_example_bench_prints_local_and_http_times(server: LiveServer,
                                                     c_client: Path) -> None:
    run = subprocess.run([str(c_client), "--bench", server.base_url, "demo"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    print(run.stdout)
    assert "ns per evaluation" in run.stdout and "us per evaluation" in run.stdout
    assert "faster per evaluation" in run.stdout
