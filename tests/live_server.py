"""A real service process for client and fuzz tests: uvicorn on a free loopback port over a
migrated SQLite registry holding random-weight versions of model 'demo'."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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


@dataclass
class LiveServer:
    base_url: str
    artifacts: dict[int, Artifact]
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def live_server(folder: Path, **env: str) -> Iterator[LiveServer]:
    """Model 'demo' v1 (alias production) and v2, served until the block ends."""
    url = f"sqlite:///{folder / 'registry.db'}"
    upgrade_to_head(url)
    artifacts = {1: random_artifact(seed=41), 2: random_artifact(seed=42)}
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        for version in (1, 2):
            register_version(session, "demo", artifacts[version].to_bytes())
        set_alias(session, "demo", "production", 1)
        session.commit()
    engine.dispose()

    port = free_port()
    log = folder / "server.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log"],
            cwd=PROJECT_ROOT, stdout=sink, stderr=subprocess.STDOUT,
            env={**os.environ, "SURROGATE_DATABASE_URL": url, "SURROGATE_ACCESS_LOG": "false",
                 **env},
        )
    server = LiveServer(f"http://127.0.0.1:{port}", artifacts, process, log)
    try:
        deadline = time.monotonic() + 60
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
