"""How fast the registry's model page is served for a model with many versions.

Registers `--versions` (default 50) versions of one model with realistic manifests, serves
them with `surrogate-serve` on loopback, and prints the time to serve /ui/models/NAME over
one keep-alive connection (the server's time plus a loopback round trip), the same for the
models page and a version page, and how many SQL statements the model page runs (counted
in process). Target: the model page in <= 200 ms with 50 versions. Nothing is asserted;
the machine's load average is printed because the figures move with it.

    python benchmarks/ui.py [--versions 50] [--requests 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import event  # noqa: E402

from service.main import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.service_process import ServerProcess, free_port, service_command  # noqa: E402
from tests.ui_registry import build_many_versions  # noqa: E402

NAME = "many"


def timings(client: httpx.Client, path: str, requests: int) -> list[float]:
    client.get(path).raise_for_status()  # warm: templates compiled, connection open
    out = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return out


def statements(url: str, path: str) -> int:
    settings = Settings(database_url=url, access_log=False, reload_interval_s=60)
    with TestClient(create_app(settings)) as client:
        client.get(path)
        engine = client.app.state.session_factory.kw["bind"]
        seen: list[str] = []

        def record(*args: object) -> None:
            if not threading.current_thread().name.startswith("registry-"):  # the poller
                seen.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", record)
        client.get(path)
        event.remove(engine, "before_cursor_execute", record)
    return len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'registry.db'}"
        start = time.perf_counter()
        build_many_versions(url, NAME, args.versions)
        print(f"registered {args.versions} versions of {NAME!r} in "
              f"{time.perf_counter() - start:.1f} s")
        port = free_port()
        server = ServerProcess.launch(service_command(port), port,
                                      {"SURROGATE_DATABASE_URL": url,
                                       "SURROGATE_ACCESS_LOG": "false"},
                                      Path(folder) / "server.log")
        try:
            server.wait_until_ok()
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for label, path in (("model page", f"/ui/models/{NAME}"),
                                    ("models page", "/ui/"),
                                    ("version page", f"/ui/models/{NAME}/versions/25")):
                    times = timings(client, path, args.requests)
                    size = len(client.get(path).content)
                    print(f"{label:12s} {path:28s} median {statistics.median(times):6.1f} ms  "
                          f"p90 {statistics.quantiles(times, n=10)[-1]:6.1f} ms  "
                          f"min {min(times):6.1f} ms  ({size / 1024:.0f} KiB, "
                          f"{args.requests} requests)")
        finally:
            server.stop()
        print(f"model page SQL statements: "
              f"{statements(url, f'/ui/models/{NAME}')} (for {args.versions} versions)")
    print("target: model page <= 200 ms with 50 versions (not asserted)")


if __name__ == "__main__":
    main()
