"""Cold start of a replica: process start -> /readyz 200 with the demo model loaded.

Runs `surrogate-serve` as deployed, over a SQLite registry holding the real demo model
(var/cold-start/registry.db, fitted once with `surrogate-train demo` when absent), and
prints the time from starting the process to the first /readyz that answers 200 "ready"
serving `demo`:
- without the kernel cache: NUMBA_CACHE_DIR is a fresh empty directory, so the kernel
  compiles at start (what a read-only container did before the image carried the cache);
- with it: the same directory, now filled, read-only for the process (as in the image).
Then the import of the service alone, with the cache, for the share imports take.

    python benchmarks/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The script's folder holds benchmarks/http.py, which would shadow the standard library's
# http package: look up modules from the project root instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx  # noqa: E402

from service.settings import PROJECT_ROOT  # noqa: E402
from tests.service_process import (  # noqa: E402
    ServerProcess,
    free_port,
    read_only_directory,
    service_command,
)

BIN = Path(sys.executable).parent
REGISTRY = PROJECT_ROOT / "var" / "cold-start" / "registry.db"


def demo_registry() -> str:
    url = f"sqlite:///{REGISTRY}"
    REGISTRY.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(BIN / "surrogate-serve"), "migrate"], check=True,
                   env={**os.environ, "SURROGATE_DATABASE_URL": url}, capture_output=True)
    # Fits the demo once (about half a minute), then finds it there.
    subprocess.run([str(BIN / "surrogate-train"), "demo", "--data-dir", str(REGISTRY.parent),
                    "--database-url", url], check=True, capture_output=True)
    return url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_to_ready(url: str, cache: Path, prefix: list[str], log: Path
                   ) -> tuple[float, float, str]:
    """Seconds from process start to /readyz 200 "ready" with demo served, the CPU seconds
    the process used until then (what the wall time would be on an idle machine, as the
    start runs on one thread), and the service's own line on where the kernel came from."""
    port = free_port()
    env = {"SURROGATE_DATABASE_URL": url, "NUMBA_CACHE_DIR": str(cache),
           "SURROGATE_LOG_FORMAT": "text", "SURROGATE_ACCESS_LOG": "false"}
    start = time.monotonic()
    server = ServerProcess.launch([*prefix, *service_command(port)], port, env, log)
    try:
        with httpx.Client(timeout=2) as client:
            while True:
                if server.process.poll() is not None:
                    raise RuntimeError(log.read_text()[-2000:])
                try:
                    ready = client.get(f"{server.url}/readyz")
                    body = ready.json()
                    if ready.status_code == 200 and body["status"] == "ready" and "demo" in \
                            body["serving"]:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(server.process.pid)
    finally:
        server.stop()
    kernel = next((line.split("] ", 1)[-1] for line in log.read_text().splitlines()
                   if "kernel:" in line), "?")
    return elapsed, cpu, kernel


def import_seconds(cache: Path, prefix: list[str]) -> float:
    code = "import time; t = time.perf_counter(); import service.main; " \
           "print(time.perf_counter() - t)"
    done = subprocess.run([*prefix, sys.executable, "-c", code], check=True, text=True,
                          capture_output=True, env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts with the cache")
    args = parser.parse_args()
    url = demo_registry()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(figures on a busy machine are noisy)")
    with tempfile.TemporaryDirectory(prefix="surrogate-cold-") as tmp:
        folder = Path(tmp)
        cache = folder / "numba-cache"
        cache.mkdir()
        cold, cold_cpu, kernel = start_to_ready(url, cache, [], folder / "cold.log")
        print(f"without the kernel cache: {cold:6.2f} s, {cold_cpu:.2f} s CPU  ({kernel})")
        with read_only_directory(cache) as prefix:
            warm, cpu = [], []
            for run in range(args.runs):
                seconds, used, kernel = start_to_ready(url, cache, prefix,
                                                       folder / f"warm{run}.log")
                warm.append(seconds)
                cpu.append(used)
            imports = [import_seconds(cache, prefix) for _ in range(3)]
        print(f"with the kernel cache:    {statistics.median(warm):6.2f} s median of "
              f"{args.runs} (min {min(warm):.2f}, max {max(warm):.2f}), "
              f"{statistics.median(cpu):.2f} s CPU median  ({kernel})")
        print(f"  of which importing the service: {statistics.median(imports):.2f} s median")


if __name__ == "__main__":
    main()
