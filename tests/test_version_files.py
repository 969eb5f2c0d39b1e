"""Files stored with a version (the fit report figures): attached through the admin API,
listed and fetched through the public one, immutable; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from service.artifact import sha256_hex
from service.main import create_app
from service.settings import Settings
from tests.registry_helpers import png_bytes, registry_dump
from tests.service_process import random_artifact

pytestmark = pytest.mark.backends("sqlite", "postgresql")

TOKEN = "files-admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = png_bytes()
FILES = "/admin/models/steel/versions/1/files"


@pytest.fixture
def admin(database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, admin_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        response = client.post("/admin/models/steel/versions",
                               content=random_artifact().to_bytes(),
                               headers={**AUTH, "content-type": "application/octet-stream"})
        assert response.status_code == 201, response.text
        yield client


def put_file(client: TestClient, path: str, data: bytes = PNG, headers=AUTH):
    return client.put(f"{FILES}/{path}", content=data,
                      headers={**headers, "content-type": "image/png"})


def test_attached_figure_is_listed_and_fetched_byte_identical(admin: TestClient) -> None:
    put = put_file(admin, "report/fit.png", headers={**AUTH, "X-Actor": "alice"})
    assert put.status_code == 201, put.text
    url = "/v1/models/steel/versions/1/files/report/fit.png"
    expected = {"path": "report/fit.png", "media_type": "image/png", "size": len(PNG),
                "sha256": sha256_hex(PNG), "url": url}
    assert put.json() == expected
    assert admin.get("/v1/models/steel/versions/1/files").json() == [expected]
    assert admin.get("/v1/models/steel/versions/1").json()["files"] == [expected]

    fetched = admin.get(url)  # public, no token
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.content == PNG
    [entry] = admin.get("/admin/audit", headers=AUTH).json()[:1]
    assert (entry["action"], entry["actor"], entry["details"]["path"]) == (
        "attach_file", "alice", "report/fit.png")


def test_files_are_immutable_same_bytes_again_is_a_no_op_other_bytes_conflict(
    admin: TestClient, database_url: str
) -> None:
    assert put_file(admin, "report/sd.png").status_code == 201
    before = registry_dump(database_url)
    again = put_file(admin, "report/sd.png")
    assert again.status_code == 200 and again.json()["sha256"] == sha256_hex(PNG)
    conflict = put_file(admin, "report/sd.png", png_bytes(seed=1))
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "conflict"
    assert "immutable" in conflict.json()["error"]["message"]
    assert registry_dump(database_url) == before  # not even an audit entry


@pytest.mark.parametrize("path,data,field", [
    ("report/%2E%2E/fit.png", PNG, "path"),  # sent encoded: clients drop literal '..'
    ("%2E%2E/fit.png", PNG, "path"),
    ("report/.fit.png", PNG, "path"),
    ("report/fit%20plot.png", PNG, "path"),
    ("report%5Cfit.png", PNG, "path"),
    ("a/b/c/fit.png", PNG, "path"),
    ("report/fit.svg", PNG, "path"),
    ("report/fit", PNG, "path"),
    ("report/fit.png", b"GIF89a" + bytes(20), "body"),
    ("report/fit.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "body"),
])
def test_unsafe_path_or_non_png_body_is_refused_naming_the_field_and_writes_nothing(
    admin: TestClient, database_url: str, path: str, data: bytes, field: str
) -> None:
    before = registry_dump(database_url)
    response = put_file(admin, path, data)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == field
    assert registry_dump(database_url) == before


@pytest.mark.parametrize("headers,status", [
    ({}, 401), ({"Authorization": "Bearer wrong"}, 403),
])
def test_attaching_a_file_needs_the_admin_token(
    admin: TestClient, database_url: str, headers: dict, status: int
) -> None:
    before = registry_dump(database_url)
    response = put_file(admin, "report/fit.png", headers=headers)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert registry_dump(database_url) == before


def test_unknown_files_and_versions_are_404_with_the_error_body(admin: TestClient) -> None:
    put_file(admin, "report/fit.png").raise_for_status()
    for url, message in [
        ("/v1/models/steel/versions/1/files/report/sd.png", "has no file 'report/sd.png'"),
        ("/v1/models/steel/versions/1/files/", "has no file ''"),
        ("/v1/models/steel/versions/2/files/report/fit.png", "has no version 2"),
        ("/v1/models/steel/versions/2/files", "has no version 2"),
        ("/v1/models/iron/versions/1/files", "'iron' is not registered"),
    ]:
        response = admin.get(url)
        assert response.status_code == 404, url
        error = response.json()["error"]
        assert error["code"] == "not_found" and message in error["message"], url
    missing_version = put_file(admin, "report/fit.png").request.url.path.replace("/1/", "/2/")
    assert admin.put(missing_version, content=PNG, headers=AUTH).status_code == 404


def test_registration_with_a_bad_file_stores_nothing(database_url: str) -> None:
    """Registration validates the files before its first write, so a refused figure
    leaves no version behind (the direct-database path commits whatever is flushed)."""
    from service.errors import InvalidInputError
    from service.registry.db import make_engine, make_session_factory
    from service.registry.writes import register

    before = registry_dump(database_url)
    engine = make_engine(database_url)
    with pytest.raises(InvalidInputError, match="is not a valid PNG"):
        with make_session_factory(engine).begin() as session:
            register(session, "steel", random_artifact().to_bytes(), actor="test",
                     files={"report/fit.png": PNG, "report/sd.png": b"not a png"})
    engine.dispose()
    assert registry_dump(database_url) == before


@pytest.mark.parametrize("same_bytes", [True, False], ids=["same-bytes", "different-bytes"])
def test_simultaneous_uploads_of_one_new_path_store_one_file_and_never_fail(
    admin: TestClient, same_bytes: bool
) -> None:
    """Uploads racing for the same new path (a retried upload, two operators): one stores
    it (201); the others get what a later upload gets: 200 for the same bytes, 409 for
    different ones. Never a 500 from the losing insert."""
    uploads = 8
    start = threading.Barrier(uploads)

    def upload(i: int) -> int:
        data = PNG if same_bytes else png_bytes(seed=10 + i)
        start.wait(timeout=30)  # every upload reaches the database at the same moment
        return put_file(admin, "report/race.png", data).status_code

    with ThreadPoolExecutor(uploads) as pool:
        statuses = sorted(pool.map(upload, range(uploads), timeout=120))

    assert statuses == ([200] * (uploads - 1) + [201] if same_bytes
                        else [201] + [409] * (uploads - 1))
    listed = admin.get("/v1/models/steel/versions/1/files").json()
    assert [f["path"] for f in listed].count("report/race.png") == 1
