"""How a live replica holds up against requests that ask for too much, and while the largest
admissible ones run; optionally against an older checkout in the same run, for ratios.

    .venv/bin/python benchmarks/robustness.py [--before DIR] [--only NAME,...]
        [--client-timeout 60] [--registrations] [--writers 20]

Each case of the audit (a 64 MiB body of zeros, 99 quantile levels on 16,384 strains,
`observed` with 1,000 points on 100,000 strains, a 1,000,001-point export with 4 curves,
an unreachable interpolation error, 10,000 samples of 1,000 strains alone and four at
once, an 8 MB header, 20,000 headers, an observed stress of 1e308, ...) goes to a fresh
replica (so one case's leftover work cannot slow the next) while one thread polls /healthz
every 10 ms. Printed per case: the answer (status, or `timeout` after --client-timeout,
the balancer's 60 s), the time to it, the slowest /healthz meanwhile (target: at most 1 s),
the replica's peak resident memory, and its growth.

Then the largest admissible request of each kind (sizes from this checkout's budgets,
service/prediction/admission.py: the most strains or points that fit), while a second
client sends 1,000-strain predicts back to back: the request's status and time (target:
within the 60 s balancer timeout), and the p99 of the small predicts (target: <= 50 ms).

With --before DIR (a checkout of an older commit, e.g. `git worktree add /tmp/before
02ca1ab`), every case runs on a replica of that checkout first, then of this one, back to
back, and the ratios before/after are printed: the machine's load changes over minutes, so
only figures from one run compare. Its replicas run this virtualenv's Python with DIR on
PYTHONPATH (DIR's registry schema and seeding code).

--registrations adds the earlier check: --writers registrations at once through the admin
API while GET /v1/models is polled (this checkout only).

Replicas listen on 127.0.0.1 only. Nothing asserts; the load average is printed.

Why one module of this size: the cases, the two clients that measure around them and the
side-by-side report are one benchmark whose parts only make sense together.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project root, not benchmarks/

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from service.artifact import Artifact  # noqa: E402
from service.inference.posterior import Posterior  # noqa: E402
from service.prediction import admission  # noqa: E402
from service.settings import PROJECT_ROOT, Settings  # noqa: E402
from tests.service_process import (  # noqa: E402
    ServerProcess,
    free_port,
    random_artifact,
    smooth_curve_section,
)

TOKEN = "robustness-benchmark-token"
LEVELS = [round(level, 2) for level in np.linspace(0.01, 0.99, 99)]
SMALL = {"strain": np.linspace(-0.4, 0.4, 1_000).tolist()}
# Registers the benchmark's models with the checkout's own code (its schema, its writes).
SEED = """
import sys
from service.artifact import Artifact
from tests.service_process import random_artifact, seed_registry, smooth_curve_section
url = sys.argv[1]
seed_registry(url, "steel", [random_artifact(draws=1000, hidden_sizes=(16,), seed=1)])
curvy = random_artifact(draws=1000, hidden_sizes=(8,), seed=3)
curvy.manifest["curve_model"] = smooth_curve_section()
seed_registry(url, "curvy", [Artifact.from_bytes(curvy.to_bytes())])
"""


def steel() -> Posterior:
    return Posterior(random_artifact(draws=1000, hidden_sizes=(16,), seed=1))


def curvy() -> Posterior:
    artifact = random_artifact(draws=1000, hidden_sizes=(8,), seed=3)
    artifact.manifest["curve_model"] = smooth_curve_section()
    return Posterior(Artifact.from_bytes(artifact.to_bytes()))


@dataclass
class Replica:
    server: ServerProcess
    grpc_port: int

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def start(root: Path, folder: Path) -> Replica:
    """A fresh replica of the checkout at `root` over a freshly seeded SQLite registry."""
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'registry.db'}"
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", SEED, url], cwd=root, env=env, check=True,
                   capture_output=True)
    port, grpc_port = free_port(), free_port()
    env.update({"SURROGATE_DATABASE_URL": url, "SURROGATE_ADMIN_TOKEN": TOKEN,
                "SURROGATE_ACCESS_LOG": "false", "SURROGATE_GRPC_PORT": str(grpc_port),
                "SURROGATE_GRPC_HOST": "127.0.0.1"})
    log = folder / "server.log"
    with open(log, "wb") as sink:  # cwd=root: `python -c` puts the cwd first on the path
        process = subprocess.Popen(
            [sys.executable, "-c", "from service.cli import main; main()", "--host",
             "127.0.0.1", "--port", str(port)], cwd=root, env=env, stdout=sink,
            stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log)
    server.wait_until_ok("/readyz", timeout_s=300)
    return Replica(server, grpc_port)


class Poller(threading.Thread):
    """GETs `url` back to back (10 ms apart) until stopped; keeps the slowest answer and
    the server's largest resident set seen."""

    def __init__(self, url: str, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.url, self.server = url, server
        self.slowest = 0.0
        self.failures = 0
        self.peak_rss_kib = server.rss_kib()
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.done.is_set():
                started = time.perf_counter()
                try:
                    if client.get(self.url).status_code != 200:
                        self.failures += 1
                except httpx.HTTPError:
                    self.failures += 1
                self.slowest = max(self.slowest, time.perf_counter() - started)
                try:
                    self.peak_rss_kib = max(self.peak_rss_kib, self.server.rss_kib())
                except (FileNotFoundError, RuntimeError):
                    pass  # the process ended
                time.sleep(0.01)


class SmallClient(threading.Thread):
    """1,000-strain predicts back to back (10 ms apart) until stopped: their latencies."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        body = json.dumps(SMALL).encode()
        with httpx.Client(timeout=60, headers={"content-type": "application/json"}) as client:
            while not self.done.is_set():
                started = time.perf_counter()
                try:
                    status = client.post(f"{self.url}/v1/models/steel/predict",
                                         content=body).status_code
                except httpx.HTTPError:
                    status = 0
                self.latencies.append(time.perf_counter() - started)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                time.sleep(0.01)

    def p99_ms(self) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return 1e3 * statistics.quantiles(self.latencies, n=100)[98]


@dataclass
class Result:
    answer: str
    seconds: float
    healthz_ms: float
    rss_mib: float
    growth_mib: float
    p99_ms: float | None = None
    small: int = 0


Sender = Callable[[Replica, float], str]


def measure(replica: Replica, send: Sender, timeout: float, small: bool) -> Result:
    before = replica.server.rss_kib()
    poller = Poller(f"{replica.url}/healthz", replica.server)
    client = SmallClient(replica.url) if small else None
    poller.start()
    if client is not None:
        client.start()
    time.sleep(0.5)
    started = time.perf_counter()
    try:
        answer = send(replica, timeout)
    except (httpx.TimeoutException, TimeoutError):
        answer = "timeout"
    except (httpx.TransportError, ConnectionError) as exc:
        answer = f"dropped ({type(exc).__name__})"
    took = time.perf_counter() - started
    time.sleep(0.3)
    poller.done.set()
    poller.join()
    if client is not None:
        client.done.set()
        client.join()
    return Result(answer, took, poller.slowest * 1e3, poller.peak_rss_kib / 1024,
                  (poller.peak_rss_kib - before) / 1024,
                  client.p99_ms() if client is not None else None,
                  len(client.latencies) if client is not None else 0)


# --- the senders -------------------------------------------------------------------------

def post(path: str, body: bytes | dict, content_type: str = "application/json",
         headers: dict | None = None) -> Sender:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    def send(replica: Replica, timeout: float) -> str:
        answer = httpx.post(f"{replica.url}{path}", content=raw, timeout=timeout,
                            headers={"content-type": content_type, **(headers or {})})
        return str(answer.status_code)
    return send


def get(path: str, params: dict) -> Sender:
    def send(replica: Replica, timeout: float) -> str:
        answer = httpx.get(f"{replica.url}{path}", params=params, timeout=timeout)
        return str(answer.status_code)
    return send


def at_once(sender: Sender, count: int) -> Sender:
    def send(replica: Replica, timeout: float) -> str:
        with ThreadPoolExecutor(count) as pool:
            answers = list(pool.map(lambda _: sender(replica, timeout), range(count)))
        return ",".join(answers)
    return send


def raw_head(head: bytes) -> Sender:
    """A request head written to a socket in 64 kB pieces; the status line read back."""
    def send(replica: Replica, timeout: float) -> str:
        with socket.create_connection(("127.0.0.1", replica.port), timeout=timeout) as sock:
            try:
                for start in range(0, len(head), 65_536):
                    sock.sendall(head[start:start + 65_536])
            except (BrokenPipeError, ConnectionResetError):
                pass
            received = b""
            while b"\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        return received.split(b" ")[1].decode() if received else "closed"
    return send


def grpc_infer(count: int) -> Sender:
    def send(replica: Replica, timeout: float) -> str:
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        request = service_pb2.ModelInferRequest(model_name="steel")
        request.inputs.add(name="strain", datatype="FP64", shape=[count])
        request.raw_input_contents.append(np.linspace(-0.4, 0.4, count).tobytes())
        with grpc.insecure_channel(f"127.0.0.1:{replica.grpc_port}", options=[
                ("grpc.max_send_message_length", 2**30),
                ("grpc.max_receive_message_length", 2**30)]) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            try:
                stub.ModelInfer(request, timeout=timeout)
            except grpc.RpcError as error:
                return error.code().name
        return "OK"
    return send


def zeros_body(prefix: bytes, size: int, suffix: bytes) -> bytes:
    count = (size - len(prefix) - len(suffix)) // 2
    return prefix + b"0," * count + b"0" + suffix


def oip(count: int) -> dict:
    return {"inputs": [{"name": "strain", "shape": [count], "datatype": "FP64",
                        "data": np.linspace(-0.4, 0.4, count).tolist()}]}


def strains(count: int) -> list[float]:
    return np.linspace(-0.45, 0.45, count).tolist()


OBSERVED = {"strain": np.linspace(-0.45, 0.45, 1_000).tolist(),
            "stress": np.linspace(-0.8, 0.4, 1_000).tolist()}


def audit_cases() -> list[tuple[str, Sender]]:
    mib = 1024 * 1024
    return [
        ("64 MiB predict body of zeros", post("/v1/models/steel/predict", zeros_body(
            b'{"strain": [', 64 * mib, b"]}"))),
        ("16 MiB OIP JSON body of zeros", post("/v2/models/steel/infer", zeros_body(
            b'{"inputs": [{"name": "strain", "shape": [1], "datatype": "FP64", "data": [',
            16 * mib, b"]}]}"))),
        ("10^6 strings in strain (7 MB)", post("/v1/models/steel/predict", b'{"strain": ['
                                               + b", ".join([b'"0.1"'] * 1_000_000) + b"]}")),
        ("99 levels x 16,384 strains", post("/v1/models/steel/predict", {
            "strain": strains(16_384), "quantiles": LEVELS})),
        ("99 levels x 100,000 strains, 1,000 observed", post("/v1/models/curvy/predict", {
            "strain": strains(100_000), "quantiles": LEVELS, "observed": OBSERVED})),
        ("export 1,000,001 points, 4 curves", get("/v1/models/steel/export", {
            "points": 1_000_001, "curves": 4})),
        ("export 100,001 points, 99 levels", get("/v1/models/steel/export", {
            "points": 100_001, "quantiles": ",".join(map(str, LEVELS))})),
        ("export, unreachable max_interpolation_error", get("/v1/models/steel/export", {
            "max_interpolation_error": 1e-9, "curves": 50})),
        ("draws 10,000 x 1,000 strains", post("/v1/models/steel/predict", {
            "strain": strains(1_000), "draws": 10_000})),
        ("4 x (draws 10,000 x 1,000 strains) at once", at_once(post(
            "/v1/models/steel/predict", {"strain": strains(1_000), "draws": 10_000}), 4)),
        ("8 MB header", raw_head(b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-big: "
                                 + b"a" * 8_000_000 + b"\r\nconnection: close\r\n\r\n")),
        ("20,000 headers", raw_head(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"x-h%d: 1\r\n" % i for i in range(20_000)) + b"connection: close\r\n\r\n")),
        ("observed.stress 1e308", post("/v1/models/curvy/predict", {
            "strain": [0.0, 0.1], "observed": {"strain": [0.1, 0.2],
                                               "stress": [1e308, 0.0]}})),
    ]


def largest_admissible() -> list[tuple[str, Sender]]:
    """The largest request of each kind this checkout's defaults admit."""
    settings = Settings(database_url="sqlite://")
    plain, material = steel(), curvy()

    def most(estimate_for: Callable[[int], admission.Estimate], upper: int) -> int:
        try:
            admission.check_budget(estimate_for, upper, "strain", settings)
            return upper
        except admission.PayloadTooLargeError as exc:
            return int(exc.details[0]["limit"])

    cap = settings.max_points_per_request
    n_plain = most(lambda n: admission.predict_estimate(plain, n), cap)
    n_levels = most(lambda n: admission.predict_estimate(plain, n, levels=99),
                    settings.max_quantile_points_per_request)
    n_observed = most(lambda n: admission.predict_estimate(material, n, levels=99,
                                                           observed=1_000), cap)
    n_oip = most(lambda n: admission.oip_estimate(plain, n, 5, False), cap)
    p_levels = most(lambda p: admission.export_estimate(plain, p, 3, 0, searched=False),
                    settings.max_export_quantile_points)
    p_curves = most(lambda p: admission.export_estimate(plain, p, 0, 4, searched=False),
                    settings.max_export_points)
    return [
        (f"predict, {n_plain:,} strains", post("/v1/models/steel/predict",
                                               {"strain": strains(n_plain)})),
        (f"predict, 99 levels x {n_levels:,} strains", post("/v1/models/steel/predict", {
            "strain": strains(n_levels), "quantiles": LEVELS})),
        (f"predict, 99 levels x {n_observed:,} strains, 1,000 observed", post(
            "/v1/models/curvy/predict", {"strain": strains(n_observed), "quantiles": LEVELS,
                                         "observed": OBSERVED})),
        (f"OIP JSON, {n_oip:,} strains", post("/v2/models/steel/infer", oip(n_oip))),
        (f"gRPC, {n_oip:,} strains", grpc_infer(n_oip)),
        (f"export, {p_levels:,} points, 3 levels", get("/v1/models/steel/export", {
            "points": p_levels, "quantiles": "0.05,0.5,0.95"})),
        (f"export, {p_curves:,} points, 4 curves", get("/v1/models/steel/export", {
            "points": p_curves, "curves": 4})),
    ]


# --- the report ----------------------------------------------------------------------------

def row(label: str, result: Result, small: bool) -> str:
    text = (f"  {label:<7} {result.answer:<17} {result.seconds:7.2f} s  /healthz "
            f"{result.healthz_ms:7.0f} ms  RSS {result.rss_mib:6.0f} MiB "
            f"(+{result.growth_mib:.0f})")
    if small and result.p99_ms is not None:
        text += f"  small p99 {result.p99_ms:7.1f} ms ({result.small})"
    return text


def ratio(before: float, after: float) -> str:
    return f"{before / after:.1f}x" if after > 0 else "-"


def run(cases: list[tuple[str, Sender]], roots: list[tuple[str, Path]], folder: Path,
        timeout: float, small: bool) -> None:
    for index, (name, send) in enumerate(cases):
        print(f"{name}:", flush=True)
        results = {}
        for label, root in roots:
            replica = start(root, folder / f"{index}-{label}")
            try:
                results[label] = measure(replica, send, timeout, small)
            finally:
                replica.server.stop()
            print(row(label, results[label], small), flush=True)
        if len(results) == 2:
            old, new = results["before"], results["after"]
            extra = (f", small p99 {ratio(old.p99_ms, new.p99_ms)}"
                     if small and old.p99_ms and new.p99_ms else "")
            print(f"  before/after: time {ratio(old.seconds, new.seconds)}, /healthz "
                  f"{ratio(old.healthz_ms, new.healthz_ms)}, RSS growth "
                  f"{ratio(max(old.growth_mib, 1), max(new.growth_mib, 1))}{extra}",
                  flush=True)


def registrations(folder: Path, writers: int) -> None:
    from service.registry.db import upgrade_to_head
    from tests.service_process import register_concurrently

    url = f"sqlite:///{folder / 'registrations.db'}"
    upgrade_to_head(url)
    port = free_port()
    server = ServerProcess.launch(
        [sys.executable, "-c", "from service.cli import main; main()", "--host",
         "127.0.0.1", "--port", str(port)], port,
        {"SURROGATE_DATABASE_URL": url, "SURROGATE_ADMIN_TOKEN": TOKEN,
         "SURROGATE_ACCESS_LOG": "false"}, folder / "registrations.log")
    server.wait_until_ok(timeout_s=120)
    data = [random_artifact(draws=50, seed=seed).to_bytes() for seed in range(writers)]
    try:
        poller = Poller(f"{server.url}/v1/models", server)
        poller.start()
        results = register_concurrently(server.url, TOKEN, "steel", data)
        poller.done.set()
        poller.join()
    finally:
        server.stop()
    versions = sorted(result.version or -1 for result in results)
    print(f"{writers} concurrent registrations (SQLite): statuses "
          f"{sorted(r.status for r in results)}; versions 1..{writers}: "
          f"{'met' if versions == list(range(1, writers + 1)) else 'NOT met'}; max "
          f"{max(r.seconds for r in results):.2f} s; slowest GET /v1/models "
          f"{poller.slowest:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout to compare against")
    parser.add_argument("--only", help="comma-separated case numbers (1-based), e.g. 1,4")
    parser.add_argument("--client-timeout", type=float, default=60.0)
    parser.add_argument("--skip-largest", action="store_true")
    parser.add_argument("--registrations", action="store_true")
    parser.add_argument("--writers", type=int, default=20)
    args = parser.parse_args()
    roots = ([("before", args.before.resolve())] if args.before else []) + [
        ("after", PROJECT_ROOT)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"client timeout {args.client_timeout:g} s; targets: /healthz <= 1,000 ms, "
          f"small p99 <= 50 ms, every answer within 60 s")
    cases = audit_cases()
    if args.only:
        cases = [cases[int(i) - 1] for i in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="surrogate-robustness-") as tmp:
        folder = Path(tmp)
        print("\n== the audit's cases ==")
        run(cases, roots, folder / "cases", args.client_timeout, small=False)
        if not args.skip_largest:
            print("\n== the largest admissible requests, with 1,000-strain predicts from "
                  "another client ==")
            run(largest_admissible(), roots, folder / "largest", args.client_timeout,
                small=True)
        if args.registrations:
            registrations(folder, args.writers)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
