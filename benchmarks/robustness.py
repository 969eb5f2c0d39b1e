"""How a live server holds up against one huge bad request and a burst of registrations.

    .venv/bin/python benchmarks/robustness.py [--sqlite] [--writers 20]

1. A 10^6-string body (`{"strain": ["0.1", ...]}`, ~7 MB) sent to the predict route while
   another thread polls /healthz every 10 ms: prints the answer's status and time, the
   slowest /healthz meanwhile (target < 0.5 s) and the growth of the server's resident
   memory (target < 400 MB).
2. `--writers` registrations at once through the admin API, while another thread reads
   GET /v1/models: prints each registration's status, version and time (target: versions
   1..n, no 5xx, each < 15 s) and the slowest read meanwhile (target < 3 s). On PostgreSQL
   (a throwaway server from tests/postgres_server.py) when its binaries are installed,
   else on SQLite; the output says which.

Timings depend on what else the machine runs: the load average is printed. Nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project root, not benchmarks/

import httpx  # noqa: E402

from service.registry.db import upgrade_to_head  # noqa: E402
from tests.service_process import (  # noqa: E402
    ServerProcess,
    free_port,
    random_artifact,
    register_concurrently,
    seed_registry,
    service_command,
)

TOKEN = "robustness-benchmark-token"


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
        with httpx.Client(timeout=30) as client:
            while not self.done.is_set():
                started = time.perf_counter()
                try:
                    if client.get(self.url).status_code != 200:
                        self.failures += 1
                except httpx.HTTPError:
                    self.failures += 1
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.peak_rss_kib = max(self.peak_rss_kib, self.server.rss_kib())
                time.sleep(0.01)


def launch(folder: Path, database_url: str) -> ServerProcess:
    port = free_port()
    server = ServerProcess.launch(service_command(port), port, {
        "SURROGATE_DATABASE_URL": database_url, "SURROGATE_ADMIN_TOKEN": TOKEN,
        "SURROGATE_ACCESS_LOG": "false"}, folder / "server.log")
    server.wait_until_ok(timeout_s=120)
    return server


def bad_body(folder: Path) -> None:
    url = f"sqlite:///{folder / 'bad-body.db'}"
    seed_registry(url, "demo", [random_artifact(seed=1)])
    server = launch(folder, url)
    try:
        body = b'{"strain": [' + b", ".join([b'"0.1"'] * 1_000_000) + b"]}"
        before = server.rss_kib()
        poller = Poller(f"{server.url}/healthz", server)
        poller.start()
        time.sleep(0.3)
        started = time.perf_counter()
        response = httpx.post(f"{server.url}/v1/models/demo/predict", content=body,
                              headers={"content-type": "application/json"}, timeout=120)
        took = time.perf_counter() - started
        time.sleep(0.3)
        poller.done.set()
        poller.join()
        growth_mb = (poller.peak_rss_kib - before) / 1024
        print(f"1. 10^6-string body ({len(body) / 1e6:.1f} MB): {response.status_code} in "
              f"{took:.2f} s: {response.json()['error']['message'][:80]!r}")
        print(f"   slowest /healthz meanwhile {poller.slowest * 1e3:.0f} ms (target < 500 ms: "
              f"{'met' if poller.slowest < 0.5 else 'NOT met'}); failed probes "
              f"{poller.failures}")
        print(f"   server RSS {before / 1024:.0f} MB -> peak {poller.peak_rss_kib / 1024:.0f} "
              f"MB: +{growth_mb:.0f} MB (target < 400 MB: "
              f"{'met' if growth_mb < 400 else 'NOT met'})")
    finally:
        server.stop()


def registrations(folder: Path, database_url: str, label: str, writers: int) -> None:
    upgrade_to_head(database_url)
    server = launch(folder, database_url)
    data = [random_artifact(draws=50, seed=seed).to_bytes() for seed in range(writers)]
    try:
        poller = Poller(f"{server.url}/v1/models", server)
        poller.start()
        results = register_concurrently(server.url, TOKEN, "steel", data)
        poller.done.set()
        poller.join()
    finally:
        server.stop()
    statuses = sorted(result.status for result in results)
    versions = sorted(result.version or -1 for result in results)
    times = [result.seconds for result in results]
    print(f"2. {writers} concurrent registrations through the admin API on {label}:")
    print(f"   statuses {statuses}")
    print(f"   versions {versions} (target 1..{writers}: "
          f"{'met' if versions == list(range(1, writers + 1)) else 'NOT met'})")
    print(f"   per request: min {min(times):.2f} s, max {max(times):.2f} s (target each "
          f"< 15 s: {'met' if max(times) < 15 else 'NOT met'})")
    print(f"   slowest GET /v1/models meanwhile {poller.slowest:.2f} s (target < 3 s: "
          f"{'met' if poller.slowest < 3 else 'NOT met'}); failed reads {poller.failures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true",
                        help="register on SQLite even when PostgreSQL is installed")
    parser.add_argument("--writers", type=int, default=20)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="surrogate-robustness-") as tmp:
        folder = Path(tmp)
        bad_body(folder)
        from tests.postgres_server import PostgresServer, find_pg_bin

        bin_dir = None if args.sqlite else find_pg_bin()
        if bin_dir is None:
            registrations(folder, f"sqlite:///{folder / 'registry.db'}", "SQLite",
                          args.writers)
            return
        postgres = PostgresServer.create(bin_dir)
        try:
            postgres.start()
            registrations(folder, postgres.url(), "PostgreSQL", args.writers)
        finally:
            postgres.destroy()


if __name__ == "__main__":
    main()
