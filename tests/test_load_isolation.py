"""One version that cannot load never stops the others: manifests are checked completely at
upload, and whatever a load raises marks only that version unloadable. Readiness says the
truth about what can answer, and never shows where the database lives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.artifact import Artifact
from service.main import create_app
from service.registry.cache import ModelCache
from service.registry.db import make_engine, make_session_factory
from service.registry.reads import VersionRef
from service.registry.routing import LiveRegistry
from service.registry.tables import ModelBlob, ModelVersion, RegisteredModel
from service.registry.writes import register, set_alias
from service.settings import Settings
from tests.registry_helpers import corrupted_artifact
from tests.service_process import free_port, random_artifact

TOKEN = "tok-for-isolation-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def with_manifest(artifact: Artifact, **changes) -> bytes:
    """The artifact's bytes with manifest fields replaced, bypassing every check."""
    good = artifact.to_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "manifest.json":
                manifest = json.loads(data)
                manifest.update(changes)
                data = json.dumps(manifest).encode()
            target.writestr(info, data)
    return out.getvalue()


def store_unchecked(session: Session, name: str, data: bytes, alias: str | None) -> None:
    """Write a version straight into the tables, as an older release or a hand edit might
    have, with none of the upload checks."""
    if session.get(RegisteredModel, name) is None:
        session.add(RegisteredModel(name=name, last_version=1))
    session.flush()
    session.add(ModelVersion(name=name, version=1, status="ready", manifest={}, metrics={},
                             sha256=hashlib.sha256(data).hexdigest(),
                             size_bytes=len(data)))
    session.flush()
    session.add(ModelBlob(name=name, version=1, data=data))
    session.flush()
    if alias:
        set_alias(session, name, alias, 1, actor="test")


@pytest.fixture
def admin(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url, admin_token=TOKEN))) as c:
        yield c


@pytest.mark.parametrize("changes,field", [
    ({"training_domain": {}}, "training_domain.min"),
    ({"training_domain": {"min": "abc", "max": 1.0}}, "training_domain.min"),
    ({"training_domain": {"min": 1.0, "max": -1.0}}, "training_domain"),
    ({"normalisation": {"x_mean": 0, "x_scale": 1, "y_mean": 0}}, "normalisation.y_scale"),
    ({"inference": {"draws": "50"}}, "inference.draws"),
    ({"architecture": {"hidden_sizes": [8], "activation": "tanh"}},
     "architecture.noise_link"),
])
def test_an_upload_with_an_incomplete_manifest_is_a_422_naming_the_field(
    admin: TestClient, changes: dict, field: str
) -> None:
    data = with_manifest(random_artifact(seed=3), **changes)
    response = admin.post("/admin/models/steel/versions", content=data,
                          headers={**AUTH, "content-type": "application/octet-stream"})
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]
    assert admin.get("/v1/models").json() == []


def test_a_stored_version_that_cannot_load_never_stops_other_models_routing(
    database_url: str, session: Session
) -> None:
    bad = with_manifest(random_artifact(seed=4), training_domain={})
    store_unchecked(session, "broken", bad, alias="production")
    for seed in (1, 2):
        register(session, "steel", random_artifact(seed=seed).to_bytes(), actor="test")
    set_alias(session, "steel", "production", 1, actor="test")
    session.commit()
    with TestClient(create_app(Settings(database_url=database_url,
                                        admin_token=TOKEN))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["database"] == "ok"
        assert [f["model"] for f in ready.json()["reload_failures"]] == ["broken"]
        client.put("/admin/models/steel/aliases/production", json={"version": 2},
                   headers=AUTH).raise_for_status()
        answer = client.post("/v1/models/steel/predict", json={"strain": [0.1]})
        assert answer.json()["version"] == 2
        broken = client.post("/v1/models/broken/predict", json={"strain": [0.1]})
        assert broken.status_code == 503, broken.text


class _ExplodingCache(ModelCache):
    """A cache whose loader fails for one model with an error nobody anticipated."""

    def _load(self, session: Session, ref: VersionRef):  # type: ignore[override]
        if ref.name == "explodes":
            raise RuntimeError("something nobody planned for")
        return super()._load(session, ref)


def test_any_exception_from_one_load_is_recorded_and_the_rest_route(
    database_url: str, session: Session
) -> None:
    for name in ("explodes", "steel"):
        register(session, name, random_artifact(seed=1).to_bytes(), actor="test")
        set_alias(session, name, "production", 1, actor="test")
    session.commit()
    engine = make_engine(database_url)
    live = LiveRegistry(make_session_factory(engine), _ExplodingCache(), interval_s=60)
    live.refresh()
    status = live.status()
    engine.dispose()
    assert status["database"] == "ok"
    assert status["serving"] == {"steel": {"production": 1}}
    [failure] = status["reload_failures"]
    assert failure["model"] == "explodes" and "RuntimeError" in failure["message"]


def test_readiness_is_503_when_no_alias_target_can_load(
    database_url: str, session: Session
) -> None:
    store_unchecked(session, "broken", corrupted_artifact(), alias="production")
    session.commit()
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "unavailable"


def test_readiness_never_shows_the_database_host_or_port(database_url: str,
                                                         session: Session) -> None:
    register(session, "steel", random_artifact(seed=1).to_bytes(), actor="test")
    session.commit()
    port = free_port()
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        live = client.app.state.live_registry
        unreachable = make_engine(f"postgresql+psycopg://u:p@127.0.0.1:{port}/registry",
                                  connect_timeout=1)
        live._session_factory = make_session_factory(unreachable)
        live.refresh()
        body = client.get("/readyz").text
        unreachable.dispose()
    assert '"database":"unavailable"' in body
    assert str(port) not in body and "127.0.0.1" not in body


def test_a_deleted_sqlite_registry_is_noticed_not_recreated(
        tmp_path: Path, migrated_template: Path) -> None:
    path = tmp_path / "registry.db"
    path.write_bytes(migrated_template.read_bytes())
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        register(session, "steel", random_artifact(seed=1).to_bytes(), actor="test")
        set_alias(session, "steel", "production", 1, actor="test")
        session.commit()
    engine.dispose()
    with TestClient(create_app(Settings(database_url=url, admin_token=TOKEN))) as client:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        client.app.state.live_registry.refresh()
        ready = client.get("/readyz").json()
        write = client.patch("/admin/models/steel", json={"description": "lost?"},
                             headers=AUTH)
        served = client.post("/v1/models/steel/predict", json={"strain": [0.1]})
    assert ready["database"] == "unavailable", ready
    assert write.status_code == 503, write.text
    assert served.status_code == 200  # what is loaded keeps answering
    assert not path.exists()
