"""Uploads built to break the decoder are a 422 that says why, never a 500; figures are
checked as whole PNG files and every download says `nosniff`."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.registry_helpers import png_bytes, registry_dump
from tests.service_process import random_artifact

TOKEN = "tok-for-upload-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def admin(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url, admin_token=TOKEN))) as c:
        yield c


def upload(client: TestClient, data: bytes):
    return client.post("/admin/models/steel/versions", content=data,
                       headers={**AUTH, "content-type": "application/octet-stream"})


def rebuilt(replace: dict[str, bytes] | None = None,
            compression: int = zipfile.ZIP_STORED) -> bytes:
    """A good artifact's members, some replaced by raw bytes."""
    good = random_artifact(seed=2).to_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as source, \
            zipfile.ZipFile(out, "w", compression) as target:
        for info in source.infolist():
            target.writestr(info.filename, (replace or {}).get(info.filename,
                                                               source.read(info)))
    return out.getvalue()


def huge_npy_header() -> bytes:
    """trunk0.W.npy whose header declares 2**40 float64 elements, with 8 bytes of data."""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + \
        bytes(8)
    return rebuilt({"trunk0.W.npy": member})


def deeply_nested_manifest() -> bytes:
    return rebuilt({"manifest.json": b"[" * 100_000 + b"]" * 100_000})


def corrupt_deflate() -> bytes:
    data = bytearray(rebuilt(compression=zipfile.ZIP_DEFLATED))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("trunk0.W.npy")
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:
                                                          info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start:start + 64] = b"\xff" * 64  # not a valid deflate block
    return bytes(data)


def encrypted_member() -> bytes:
    data = bytearray(rebuilt())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        infos = archive.infolist()
    for info in infos:  # set the "encrypted" bit in the local and central headers
        data[info.header_offset + 6] |= 0x01
    central = data.find(b"PK\x01\x02")
    while central != -1:
        data[central + 8] |= 0x01
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


@pytest.mark.parametrize("make", [huge_npy_header, deeply_nested_manifest, corrupt_deflate,
                                  encrypted_member])
def test_malformed_artifacts_are_a_422_and_change_nothing(
    admin: TestClient, database_url: str, make
) -> None:
    before = registry_dump(database_url)
    response = upload(admin, make())
    assert response.status_code == 422, response.text[:500]
    assert response.json()["error"]["code"] == "invalid_input"
    assert registry_dump(database_url) == before


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload)))


@pytest.mark.parametrize("figure,reason", [
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG"),
    (png_bytes()[:-20], "PNG"),  # cut short
    (png_bytes() + b"<script>alert(1)</script>", "PNG"),  # trailing payload
    (png_bytes().replace(b"IDAT", b"IDAU"), "PNG"),  # CRC no longer matches
    (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
     + _chunk(b"IDAT", zlib.compress(bytes(10))) + _chunk(b"IEND", b""), "PNG"),  # too little
], ids=["signature-only", "cut-short", "trailing-bytes", "bad-crc", "short-image-data"])
def test_a_figure_must_be_a_whole_png(admin: TestClient, figure: bytes, reason: str) -> None:
    upload(admin, random_artifact(seed=1).to_bytes()).raise_for_status()
    response = admin.put("/admin/models/steel/versions/1/files/report/fit.png",
                         content=figure, headers={**AUTH, "content-type": "image/png"})
    assert response.status_code == 422, response.text
    assert reason in response.json()["error"]["message"]


def test_downloads_say_nosniff(admin: TestClient) -> None:
    upload(admin, random_artifact(seed=1).to_bytes()).raise_for_status()
    admin.put("/admin/models/steel/versions/1/files/report/fit.png", content=png_bytes(),
              headers={**AUTH, "content-type": "image/png"}).raise_for_status()
    admin.put("/admin/models/steel/versions/1/inference-data", content=b"CDF\x01" + bytes(8),
              headers={**AUTH, "content-type": "application/x-netcdf"}).raise_for_status()
    for path in ("files/report/fit.png", "inference-data"):
        response = admin.get(f"/v1/models/steel/versions/1/{path}")
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
    assert json.loads(admin.get("/v1/models/steel/versions/1/files").content)[0]["size"] \
        == len(png_bytes())
