"""A real service process for the HTTP benchmarks: `surrogate-serve` on a free loopback
port over a temporary, migrated SQLite registry holding one random-weight model version
(alias production)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.artifact import Artifact
from service.registry.db import make_engine, make_session_factory, upgrade_to_head
from service.registry.repository import register_version, set_alias
from service.testing import random_artifact

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench"


@dataclass
class Server:
    base_url: str
    artifact: Artifact
    process: subprocess.Popen
    log: Path

    @property
    def predict_url(self) -> str:
        return f"{self.base_url}/v1/models/{MODEL}/predict"

    def rss_kib(self) -> int:
        """Resident set size of the server process (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(artifact: Artifact | None = None, quiet: bool = False) -> Iterator[Server]:
    """The deployed command (`surrogate-serve`), or with access logs off when quiet."""
    artifact = artifact or random_artifact(draws=1000, hidden_sizes=(16,), seed=0)
    with tempfile.TemporaryDirectory(prefix="surrogate-bench-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'registry.db'}"
        upgrade_to_head(url)
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            version = register_version(session, MODEL, artifact.to_bytes())
            set_alias(session, MODEL, "production", version)
            session.commit()
        engine.dispose()
        port = _free_port()
        command = [str(Path(sys.executable).parent / "surrogate-serve"), "--host",
                   "127.0.0.1", "--port", str(port)]
        env = {**os.environ, "SURROGATE_DATABASE_URL": url}
        if quiet:
            command = [sys.executable, "-m", "uvicorn", "service.main:app", "--host",
                       "127.0.0.1", "--port", str(port), "--no-access-log"]
            env["SURROGATE_ACCESS_LOG"] = "false"
        log = folder / "server.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=sink,
                                       stderr=subprocess.STDOUT, env=env)
        server = Server(f"http://127.0.0.1:{port}", artifact, process, log)
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
