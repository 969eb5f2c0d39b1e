"""The compose file is valid and the container entrypoints work outside Docker."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.service_process import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose missing: scripts/system-deps.sh installs it"
    subprocess.run([compose, "config", "-q"], cwd=ROOT, check=True)


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
    server = ServerProcess.launch([str(BIN / api[0]), *args], port, env, tmp_path / "api.log")
    try:
        server.wait_until_ok("/healthz")
        assert httpx.get(f"{server.url}/healthz", timeout=2).json() == {"status": "ok"}
        models = httpx.get(f"{server.url}/v1/models", timeout=2)
        assert models.status_code == 200 and models.json() == []
    finally:
        server.stop()
