"""The compose file is valid and the container entrypoints work outside Docker."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose missing: scripts/system-deps.sh installs it"
    subprocess.run([compose, "config", "-q"], cwd=ROOT, check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compose_command(service: str) -> list[str]:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return spec["services"][service]["command"]


def test_migrate_and_api_entrypoints_serve_health(tmp_path: Path) -> None:
    env = {**os.environ, "SURROGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    migrate = compose_command("migrate")
    subprocess.run([str(BIN / migrate[0]), *migrate[1:]], env=env, check=True)
    api = compose_command("api")
    port = free_port()
    args = [a if a != "0.0.0.0" else "127.0.0.1" for a in api[1:]]
    args[args.index("--port") + 1] = str(port)
    server = subprocess.Popen([str(BIN / api[0]), *args], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("API entrypoint did not come up")
                time.sleep(0.2)
        assert response.json() == {"status": "ok"}
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
        assert models.status_code == 200 and models.json() == []
    finally:
        server.terminate()
        server.wait(timeout=10)
