"""End-to-end HTTP figures of the predict path on loopback, in one run.

    .venv/bin/python benchmarks/http.py [--seconds 10] [--quiet-logs] [--only export|batch]

Starts the service (`surrogate-serve`, as deployed) on 127.0.0.1 over a temporary SQLite
registry holding a 1->16 network with 1,000 posterior draws, then prints:
- one-strain predict latency p50/p99 from one connection (wrk -c1);
- requests/s and p50/p99 of one-strain predicts vs the service's own /healthz under 32
  concurrent connections (wrk -c32, each run bounded to --seconds), and their ratio;
- the wall time of one 100,000-strain request (best of 5; body pre-encoded, response
  received in full), and of decoding its response in the client;
- the same 100,000 strains through native JSON, the Open Inference Protocol over HTTP
  with binary tensors and over gRPC, each from sending to numpy arrays in the client, and
  their ratio to native JSON (benchmarks/_transports.py);
- the server's resident memory before and after 10,000 more one-strain requests;
- the wall time of exporting the model as a 100,001-point table with 3 quantiles (CSV),
  and without quantiles (CSV and JSON), each received in full (docs/export.md).
- the time of whole-curve requests: 1,000 sampled curves over 1,000 strains, and a
  material's curve at 1,000 strains given 10 observed points (docs/curves.md).
`--only export` runs the export figures alone, `--only batch` the 100,000-strain ones,
`--only curves` the whole-curve ones.
Needs `wrk` (Debian package wrk; scripts/system-deps.sh installs it). Nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

# This file's name shadows the standard library's `http` package when its folder is on the
# path (as it is for `python benchmarks/http.py`): put the project root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402

from benchmarks import _transports  # noqa: E402
from benchmarks._server import MODEL, Server, serve  # noqa: E402
from benchmarks._wrk import post_script, wrk  # noqa: E402

ONE_STRAIN = b'{"strain": [0.1]}'
def show(label: str, result: dict[str, float]) -> None:
    print(f"  {label:<34} {result['rps']:>9.0f} req/s   p50 {result['p50']:>7.3f} ms   "
          f"p99 {result['p99']:>7.3f} ms   ({result['requests']} requests, "
          f"{result['errors']} non-2xx, socket errors: {result['socket_errors']})")


def big_request(server: Server, n: int = 100_000, repeats: int = 5) -> None:
    strain = np.random.default_rng(0).uniform(-0.5, 0.5, n)
    body = orjson.dumps({"strain": strain}, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {"content-type": "application/json"}
    best, decode = float("inf"), float("inf")
    with httpx.Client(timeout=60) as client:
        for _ in range(repeats):
            started = time.perf_counter()
            response = client.post(server.predict_url, content=body, headers=headers)
            content = response.content
            best = min(best, time.perf_counter() - started)
            assert response.status_code == 200, response.text[:300]
            started = time.perf_counter()
            result = orjson.loads(content)
            decode = min(decode, time.perf_counter() - started)
            assert len(result["mean"]) == n
    print(f"  {n} strains in one request: {best * 1e3:.0f} ms wall (best of {repeats}; "
          f"request {len(body) / 1e6:.1f} MB, response {len(content) / 1e6:.1f} MB); "
          f"client-side JSON decode {decode * 1e3:.0f} ms more; target <= 500 ms: "
          f"{'met' if best <= 0.5 else 'NOT met'}")


def curve_requests(repeats: int = 5) -> None:
    """Server time of whole-curve requests on a model with a curve model (basis 12):
    1,000 sampled curves over 1,000 strains, and one material's curve at 1,000 strains
    given 10 of its points; plus the same work in process (no HTTP, no JSON)."""
    from service.inference.curves import Observed, conditional_predict, curve_samples
    from service.inference.posterior import Posterior
    from tests.service_process import random_artifact, smooth_curve_section

    artifact = random_artifact(draws=1000, hidden_sizes=(16,), seed=0)
    artifact.manifest["curve_model"] = smooth_curve_section(basis=12)
    strain = np.linspace(-0.5, 0.5, 1000)
    observed = {"strain": np.linspace(-0.45, 0.45, 10), "stress": np.zeros(10)}
    posterior = Posterior(artifact)
    cases = {
        "draws: 1000 over 1,000 strains": (
            {"strain": strain, "draws": 1000, "seed": 1},
            lambda: curve_samples(posterior, posterior.curve, strain, 1000, 1)),
        "observed: 10 points, 1,000 strains": (
            {"strain": strain, "observed": observed},
            lambda: conditional_predict(posterior, posterior.curve, strain,
                                        Observed(observed["strain"], observed["stress"]))),
    }
    with serve(artifact=artifact, quiet=True) as server, httpx.Client(timeout=120) as client:
        headers = {"content-type": "application/json"}
        for label, (body, in_process) in cases.items():
            payload = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
            best, size = float("inf"), 0
            for _ in range(repeats):
                started = time.perf_counter()
                response = client.post(server.predict_url, content=payload, headers=headers)
                best = min(best, time.perf_counter() - started)
                assert response.status_code == 200, response.text[:300]
                size = len(response.content)
            compute, cpu = float("inf"), float("inf")
            for _ in range(repeats):
                started, cpu_started = time.perf_counter(), time.process_time()
                in_process()
                compute = min(compute, time.perf_counter() - started)
                cpu = min(cpu, time.process_time() - cpu_started)
            # CPU time too: on a loaded machine wall time mostly measures the queue.
            print(f"  {label}: {best * 1e3:.0f} ms wall over HTTP (best of {repeats}, "
                  f"response {size / 1e6:.1f} MB); the computation alone in process "
                  f"{compute * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms CPU")


def export_table(server: Server, points: int = 100_001) -> None:
    """One export of `points` strains with 3 quantiles, and without, received in full."""
    url = f"{server.base_url}/v1/models/{MODEL}/export"
    cases = [("csv", "0.05,0.5,0.95"), ("csv", None), ("json", None)]
    with httpx.Client(timeout=3600) as client:
        for fmt, quantiles in cases:
            params = {"points": points, "format": fmt}
            if quantiles:
                params["quantiles"] = quantiles
            started = time.perf_counter()
            response = client.get(url, params=params)
            content = response.content
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text[:300]
            print(f"  export {points} points, format={fmt}, quantiles="
                  f"{quantiles or 'none'}: {elapsed:.1f} s wall ({len(content) / 1e6:.1f} MB; "
                  f"interpolation error {response.headers['x-interpolation-error']} total SD)")


def requests_until(url: str, at_least: int, script: str) -> int:
    """Send at least `at_least` requests in 2-second wrk runs; return how many were sent.
    (wrk bounds time only: a Lua thread:stop() ends the requests, not wrk's sleep.)"""
    sent = 0
    while sent < at_least:
        run = wrk(url, 32, 2, script)
        if run["errors"]:
            sys.exit(f"{run['errors']} failed requests while counting")
        sent += int(run["requests"])
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quiet-logs", action="store_true",
                        help="serve with access logs off (the deployed default logs each "
                        "request)")
    parser.add_argument("--only", choices=["export", "batch", "curves"],
                        help="run only this part (the export takes minutes on a busy "
                        "machine; batch: the 100,000-strain figures, no wrk runs)")
    args = parser.parse_args()
    if args.only == "curves":
        curve_requests()
        return
    if args.only == "export":
        print(f"cores: {os.cpu_count()}, load average: "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (other processes skew timings)")
        with serve(quiet=args.quiet_logs) as server:
            print(f"model with {server.artifact.draws} draws, hidden "
                  f"{server.artifact.hidden_sizes}")
            print("export:")
            export_table(server)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk; scripts/system-deps.sh)")
    print(f"cores: {os.cpu_count()}, load average: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (other processes skew timings)")
    with serve(quiet=args.quiet_logs) as server:
        print(f"service pid {server.running.process.pid} at {server.base_url}, model with "
              f"{server.artifact.draws} draws, hidden {server.artifact.hidden_sizes}, "
              f"access logs {'off' if args.quiet_logs else 'on (deployed default)'}")
        if args.only == "batch":
            print("large batch:")
            big_request(server)
            _transports.compare(server)
            return
        post = post_script(ONE_STRAIN)
        print("warm-up ...")
        wrk(server.predict_url, 8, 2, post)
        wrk(f"{server.base_url}/healthz", 8, 1)

        print("one connection (latency of a lone client):")
        single = wrk(server.predict_url, 1, args.seconds / 2, post)
        show("one-strain predict, 1 connection", single)
        print(f"  target p50 <= 2 ms: {'met' if single['p50'] <= 2 else 'NOT met'}")

        print("32 concurrent connections:")
        predict = wrk(server.predict_url, 32, args.seconds, post)
        show("one-strain predict", predict)
        health = wrk(f"{server.base_url}/healthz", 32, args.seconds)
        show("/healthz", health)
        ratio = predict["rps"] / health["rps"]
        print(f"  predict/healthz throughput: {ratio:.0%}; target >= 60%: "
              f"{'met' if ratio >= 0.6 else 'NOT met'}")

        print("large batch:")
        big_request(server)
        _transports.compare(server)

        print("export (GET /v1/models/{name}/export):")
        export_table(server)

        print("memory over 10,000 one-strain requests:")
        before = server.running.rss_kib()
        counted = requests_until(server.predict_url, 10_000, post)
        after = server.running.rss_kib()
        print(f"  RSS before {before / 1024:.1f} MiB, after {counted} requests "
              f"{after / 1024:.1f} MiB: change {(after - before) / 1024:+.1f} MiB "
              f"({(after - before) / before:+.1%})")
        again = requests_until(server.predict_url, 10_000, post)
        final = server.running.rss_kib()
        print(f"  after {again} more: {final / 1024:.1f} MiB: change "
              f"{(final - after) / 1024:+.1f} MiB ({(final - after) / after:+.1%})")
    print("whole curves (a second server, model with a curve model):")
    curve_requests()


if __name__ == "__main__":
    main()
