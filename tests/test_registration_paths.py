"""Both ways `surrogate-train` registers a fit - straight into the database, and through a
running service's admin API - store the same rows: the version, its blob, InferenceData,
files, alias and audit entries, with the same actor and source."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, select

from service.registry.db import make_engine
from tests.registry_helpers import png_bytes
from tests.service_process import ServerProcess, free_port, random_artifact, service_command
from training.registration import FitRegistration, register_in_database
from training.registry_client import register_via_api

TOKEN = "paths-token"
# Columns the database fills in at write time, which two registrations made at different
# moments cannot share. Everything else, ids included (both registries start empty), must
# be equal.
WRITE_TIMES = {
    "registered_models": {"created_at"},
    "model_versions": {"created_at"},
    "model_aliases": {"updated_at"},
    "model_version_files": {"created_at"},
    "audit_log": {"at"},
}


def rows_without_write_times(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every registry table as {column: value}, minus WRITE_TIMES."""
    engine = make_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    rows: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for name, table in sorted(metadata.tables.items()):
            skip = WRITE_TIMES.get(name, set())
            assert skip <= set(table.c.keys()), (name, skip)  # the names are still right
            kept = [column for column in table.c if column.name not in skip]
            rows[name] = sorted((dict(row._mapping) for row in connection.execute(
                select(*kept))), key=repr)
    engine.dispose()
    return rows


def test_database_and_admin_api_registrations_store_identical_rows(
    migrated_template: Path, tmp_path: Path
) -> None:
    direct_url, api_url = (f"sqlite:///{tmp_path / name}" for name in ("direct.db", "api.db"))
    for url in (direct_url, api_url):
        shutil.copy(migrated_template, url.removeprefix("sqlite:///"))
    registration = FitRegistration(
        "rubber", random_artifact(seed=3).to_bytes(), alias="candidate",
        inference_data=b"\x89HDF\r\n\x1a\n" + bytes(64),
        files={"report/fit.png": png_bytes(seed=1), "report/sd.png": png_bytes(seed=2)},
        source="surrogate-train fit var/rubber.csv --name rubber --alias candidate",
        actor="alice (surrogate-train)")

    assert register_in_database(direct_url, registration) == 1
    port = free_port()
    server = ServerProcess.launch(service_command(port), port, {
        "SURROGATE_DATABASE_URL": api_url, "SURROGATE_ADMIN_TOKEN": TOKEN,
        "SURROGATE_ACCESS_LOG": "false"}, tmp_path / "server.log")
    try:
        server.wait_until_ok()
        assert register_via_api(server.url, TOKEN, registration).version == 1
    finally:
        server.stop()

    direct, api = rows_without_write_times(direct_url), rows_without_write_times(api_url)
    assert direct == api
    [version] = direct["model_versions"]
    assert (version["registered_by"], version["source"]) == (registration.actor,
                                                             registration.source)
    assert [(e["action"], e["actor"]) for e in sorted(direct["audit_log"],
                                                      key=lambda e: e["id"])] == [
        ("register_version", registration.actor), ("attach_inference_data", registration.actor),
        ("attach_file", registration.actor), ("attach_file", registration.actor)]
    assert len(direct["model_inference_data"]) == 1
    assert sorted(f["path"] for f in direct["model_version_files"]) == sorted(
        registration.files)
