"""Static checks of the deployment files for the registry/replica setup (no Docker engine
here; `docker-compose config -q` itself is checked in test_deployment.py)."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def stage(dockerfile: str, name: str) -> str:
    match = re.search(rf"^FROM .* AS {name}\n(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S)
    assert match, name
    return match.group(1)


def test_compose_runs_postgres_migration_scalable_api_and_training_profile() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert services["db"]["healthcheck"] and services["db"]["volumes"]
    assert services["migrate"]["command"] == ["surrogate-serve", "migrate"]
    api = services["api"]
    assert "container_name" not in api  # would forbid --scale
    assert "ports" not in api and "8000" in api["expose"]  # reached through service lb
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    for setting in ("SURROGATE_DATABASE_URL", "SURROGATE_ADMIN_TOKEN",
                    "SURROGATE_RELOAD_INTERVAL_S", "SURROGATE_MAX_UPLOAD_BYTES"):
        assert setting in api["environment"], setting
    # No secret is written into the file: the token comes from the environment only.
    assert api["environment"]["SURROGATE_ADMIN_TOKEN"] == "${SURROGATE_ADMIN_TOKEN:-}"
    assert services["train"]["profiles"] == ["train"]


def test_service_image_has_no_pymc_and_runs_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    service = stage(dockerfile, "service")
    assert "pip install -e ." in service and "[train]" not in service
    user = re.findall(r"^USER (\S+)", service, re.M)
    assert user and user[-1] not in ("root", "0")
    assert "/readyz" in service
