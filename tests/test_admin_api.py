"""Admin API and public registry views, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.artifact import sha256_hex
from service.main import create_app
from service.registry.db import make_engine
from service.registry.tables import ModelBlob
from service.settings import Settings
from tests.registry_helpers import (
    corrupted_artifact,
    nan_artifact,
    pickled_artifact,
    raw_pickle,
    registry_dump,
    shape_mismatch_artifact,
)
from tests.service_process import random_artifact

pytestmark = pytest.mark.backends("sqlite", "postgresql")

TOKEN = "s3cret-admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def admin(database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, admin_token=TOKEN, max_upload_bytes=200_000)
    with TestClient(create_app(settings)) as client:
        yield client


def upload(client: TestClient, name: str, data: bytes, headers=AUTH, **params):
    return client.post(f"/admin/models/{name}/versions", content=data, params=params,
                       headers={**headers, "content-type": "application/octet-stream"})


def predict_version(client: TestClient, name: str = "steel", **body) -> int:
    response = client.post(f"/v1/models/{name}/predict", json={"strain": [0.1], **body})
    assert response.status_code == 200, response.text
    return response.json()["version"]


ADMIN_CALLS = [
    ("post", "/admin/models/steel/versions", {"content": random_artifact(seed=3).to_bytes()}),
    ("put", "/admin/models/steel/aliases/production", {"json": {"version": 1}}),
    ("delete", "/admin/models/steel/aliases/production", {}),
    ("patch", "/admin/models/steel", {"json": {"description": "x"}}),
    ("patch", "/admin/models/steel/versions/1", {"json": {"status": "archived"}}),
    ("put", "/admin/models/steel/versions/1/inference-data", {"content": b"\x89HDF\r\n\x1a\n"}),
    ("put", "/admin/models/steel/versions/1/files/report/fit.png",
     {"content": b"\x89PNG\r\n\x1a\n"}),
    ("get", "/admin/audit", {}),
]


@pytest.mark.parametrize("token_configured,headers,status", [
    (True, {}, 401),
    (True, {"Authorization": "Bearer wrong-token"}, 403),
    (True, {"Authorization": f"Basic {TOKEN}"}, 401),
    (True, {"Authorization": f"Bearer {TOKEN}x"}, 403),
    (False, AUTH, 403),
    (False, {}, 403),
])
def test_admin_calls_without_the_right_token_are_refused_and_change_nothing(
    database_url: str, token_configured: bool, headers: dict, status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(database_url=database_url, admin_token=TOKEN) if token_configured \
        else Settings(database_url=database_url)
    with TestClient(create_app(settings)) as client:
        if token_configured:  # something to protect: a model with an alias
            assert upload(client, "steel", random_artifact().to_bytes(),
                          alias="production").status_code == 201
        before = registry_dump(database_url)
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            for method, path, kwargs in ADMIN_CALLS:
                response = client.request(method, path, headers=headers, **kwargs)
                assert response.status_code == status, (method, path, response.text)
                body = response.json()
                assert body["error"]["code"] == ("unauthorized" if status == 401
                                                 else "forbidden")
                assert TOKEN not in response.text
                if status == 401:
                    assert response.headers["www-authenticate"] == "Bearer"
        after = registry_dump(database_url)
    assert after == before  # every row of every table, blobs included
    assert TOKEN not in caplog.text
    if not token_configured:
        assert "SURROGATE_ADMIN_TOKEN is not set" in body["error"]["message"]


def test_register_by_upload_then_inspect_promote_and_roll_back(admin: TestClient) -> None:
    first, second = random_artifact(seed=1), random_artifact(seed=2)
    response = upload(admin, "steel", first.to_bytes(), alias="production",
                      description="first fit", tag=["material=steel", "owner=lab"],
                      source="surrogate-train fit steel.csv --name steel",
                      sha256=sha256_hex(first.to_bytes()),
                      headers={**AUTH, "X-Actor": "alice"})
    assert response.status_code == 201, response.text
    v1 = response.json()
    assert (v1["version"], v1["aliases"], v1["registered_by"]) == (1, ["production"], "alice")
    assert v1["tags"] == {"material": "steel", "owner": "lab"}
    assert v1["source"].startswith("surrogate-train fit")
    assert upload(admin, "steel", second.to_bytes()).json()["version"] == 2

    detail = admin.get("/v1/models/steel/versions/2").json()  # public, no token
    assert detail["manifest"]["architecture"]["hidden_sizes"] == [8]
    assert detail["sha256"] == sha256_hex(second.to_bytes())
    assert set(detail) >= {"metrics", "diagnostics", "lineage", "has_inference_data"}
    assert predict_version(admin) == 1

    promote = admin.put("/admin/models/steel/aliases/production", json={"version": 2},
                        headers=AUTH)
    assert promote.json() == {"name": "steel", "alias": "production", "version": 2,
                              "previous_version": 1}
    assert predict_version(admin) == 2  # served by this replica before the call returned
    admin.put("/admin/models/steel/aliases/production", json={"version": 1}, headers=AUTH)
    assert predict_version(admin) == 1

    model = admin.get("/v1/models/steel").json()
    assert model["aliases"] == {"production": 1}
    assert [v["version"] for v in model["versions"]] == [1, 2]
    audit = admin.get("/admin/audit", headers=AUTH).json()
    assert [(e["action"], e["version"], e["alias"]) for e in reversed(audit)] == [
        ("register_version", 1, "production"), ("register_version", 2, None),
        ("set_alias", 2, "production"), ("set_alias", 1, "production")]
    assert audit[0]["details"] == {"previous_version": 2}
    assert audit[-1]["actor"] == "alice"


def test_aliases_archive_and_metadata_edits(admin: TestClient) -> None:
    for seed in (1, 2, 3):
        upload(admin, "steel", random_artifact(seed=seed).to_bytes())
    assert predict_version(admin) == 3  # no production alias: the latest ready version
    admin.put("/admin/models/steel/aliases/production", json={"version": 3}, headers=AUTH)
    archive = admin.patch("/admin/models/steel/versions/3", json={"status": "archived"},
                          headers=AUTH)
    assert archive.status_code == 409
    assert "holds alias(es) ['production']" in archive.json()["error"]["message"]

    admin.delete("/admin/models/steel/aliases/production", headers=AUTH).raise_for_status()
    assert admin.delete("/admin/models/steel/aliases/production",
                        headers=AUTH).status_code == 404
    archived = admin.patch("/admin/models/steel/versions/3", json={"status": "archived"},
                           headers=AUTH)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert predict_version(admin) == 2  # archived versions are not served by default
    assert predict_version(admin, version=3) == 3  # ... unless asked for by number
    refused = admin.put("/admin/models/steel/aliases/production", json={"version": 3},
                        headers=AUTH)
    assert refused.status_code == 422 and "archived" in refused.json()["error"]["message"]
    assert admin.put("/admin/models/steel/aliases/production", json={"version": 9},
                     headers=AUTH).status_code == 404

    edited = admin.patch("/admin/models/steel", json={"description": "rubber group",
                                                      "tags": {"team": "fem"}}, headers=AUTH)
    assert (edited.json()["description"], edited.json()["tags"]) == ("rubber group",
                                                                     {"team": "fem"})
    admin.patch("/admin/models/steel/versions/2", json={"description": "good", "tags": {"a": "b"}},
                headers=AUTH).raise_for_status()
    version = admin.get("/v1/models/steel/versions/2").json()
    assert (version["description"], version["tags"]) == ("good", {"a": "b"})
    assert admin.patch("/admin/models/steel/versions/3", json={"status": "ready"},
                       headers=AUTH).json()["status"] == "ready"
    assert predict_version(admin) == 3


@pytest.mark.parametrize("make_upload,message", [
    (corrupted_artifact, "not a valid npz archive: Bad CRC-32"),
    (pickled_artifact, "Object arrays cannot be loaded when allow_pickle=False"),
    (raw_pickle, "not a valid npz archive"),
    (shape_mismatch_artifact, "has shape (50, 1, 4), manifest architecture implies (50, 1, 8)"),
    (nan_artifact, "'mean_head.W' contains NaN"),
    (lambda: b"", "empty"),
])
def test_rejected_uploads_say_why_and_write_nothing(
    admin: TestClient, database_url: str, make_upload, message: str
) -> None:
    upload(admin, "steel", random_artifact().to_bytes(), alias="production")
    before = registry_dump(database_url)
    response = upload(admin, "steel", make_upload(), alias="candidate")
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]["message"]
    assert registry_dump(database_url) == before


def test_upload_with_wrong_sha256_or_too_large_is_refused(
    admin: TestClient, database_url: str
) -> None:
    before = registry_dump(database_url)
    data = random_artifact().to_bytes()
    wrong = upload(admin, "steel", data, sha256="0" * 64)
    assert wrong.status_code == 422 and "sha256" in wrong.json()["error"]["message"]
    big = upload(admin, "steel", random_artifact(draws=400, hidden_sizes=(16,)).to_bytes())
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    assert registry_dump(database_url) == before


def test_a_version_that_fails_to_load_is_not_served_and_readiness_reports_it(
    admin: TestClient, database_url: str
) -> None:
    upload(admin, "steel", random_artifact(seed=1).to_bytes(), alias="production")
    upload(admin, "steel", random_artifact(seed=2).to_bytes())
    engine = make_engine(database_url)
    with engine.begin() as connection:  # the stored blob of v2 rots in the database
        connection.execute(update(ModelBlob).where(ModelBlob.version == 2)
                           .values(data=corrupted_artifact()))
    engine.dispose()
    assert admin.get("/readyz").json()["status"] == "ready"
    admin.put("/admin/models/steel/aliases/production", json={"version": 2},
              headers=AUTH).raise_for_status()
    assert predict_version(admin) == 1  # the old version keeps answering
    ready = admin.get("/readyz").json()
    assert ready["status"] == "degraded"
    [failure] = ready["reload_failures"]
    assert (failure["model"], failure["version"]) == ("steel", 2)
    assert "sha256" in failure["message"]
    admin.put("/admin/models/steel/aliases/production", json={"version": 1}, headers=AUTH)
    assert admin.get("/readyz").json()["reload_failures"] == []


def test_inference_data_round_trips_through_arviz(admin: TestClient, tmp_path: Path) -> None:
    import arviz as az

    upload(admin, "steel", random_artifact().to_bytes())
    assert admin.get("/v1/models/steel/versions/1/inference-data").status_code == 404
    idata = az.from_dict(posterior={"w": np.random.default_rng(0).normal(size=(2, 30))})
    source = tmp_path / "fit.nc"
    idata.to_netcdf(str(source))
    assert admin.put("/admin/models/steel/versions/1/inference-data", content=b"not netcdf",
                     headers=AUTH).status_code == 422
    put = admin.put("/admin/models/steel/versions/1/inference-data",
                    content=source.read_bytes(), headers=AUTH)
    assert put.status_code == 204, put.text
    assert admin.put("/admin/models/steel/versions/1/inference-data",
                     content=source.read_bytes(), headers=AUTH).status_code == 409
    response = admin.get("/v1/models/steel/versions/1/inference-data")
    assert response.headers["content-type"] == "application/x-netcdf"
    exported = tmp_path / "exported.nc"
    exported.write_bytes(response.content)
    opened = az.from_netcdf(str(exported))
    np.testing.assert_array_equal(opened.posterior["w"].values, idata.posterior["w"].values)
    assert admin.get("/v1/models/steel/versions/1").json()["has_inference_data"] is True


def test_openapi_documents_the_admin_routes_and_bearer_auth(admin: TestClient) -> None:
    spec = admin.get("/openapi.json").json()
    assert "/admin/models/{name}/versions" in spec["paths"]
    assert "/admin/audit" in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
