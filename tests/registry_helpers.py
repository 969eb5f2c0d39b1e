"""Helpers for registry tests: a full dump of the registry, and bad artifacts."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
from sqlalchemy import MetaData, select

from service.artifact import Artifact
from service.registry.db import make_engine
from tests.service_process import random_artifact


def registry_dump(url: str) -> dict[str, list[tuple]]:
    """Every row of every registry table (blobs included), in a stable order."""
    engine = make_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    dump: dict[str, list[tuple]] = {}
    with engine.connect() as connection:
        for name, table in sorted(metadata.tables.items()):
            rows = connection.execute(select(table)).all()
            dump[name] = sorted((tuple(row) for row in rows), key=repr)
    engine.dispose()
    return dump


def corrupted_artifact() -> bytes:
    data = bytearray(random_artifact(seed=5).to_bytes())
    data[len(data) // 3] ^= 0xFF  # inside an array member's payload
    return bytes(data)


def pickled_artifact() -> bytes:
    """A well-formed npz whose array member is a pickled object array."""
    good = random_artifact(seed=6)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in good.arrays.items():
            member = io.BytesIO()
            if name == "trunk0.W":
                np.lib.format.write_array(member, np.array([{"x": 1}], dtype=object),
                                          allow_pickle=True)
            else:
                np.lib.format.write_array(member, array, allow_pickle=False)
            archive.writestr(f"{name}.npy", member.getvalue())
        archive.writestr("manifest.json", json.dumps({**good.manifest, "arrays_sha256": "0"}))
    return buffer.getvalue()


def raw_pickle() -> bytes:
    return pickle.dumps({"trunk0.W": np.zeros(3)})


def shape_mismatch_artifact() -> bytes:
    """Arrays for hidden size 4, manifest claiming 8 (its content hash is consistent)."""
    small = random_artifact(seed=7, hidden_sizes=(4,))
    manifest = json.loads(json.dumps(small.manifest))
    manifest["architecture"]["hidden_sizes"] = [8]
    return Artifact(manifest=manifest, arrays=small.arrays).to_bytes()


def nan_artifact() -> bytes:
    artifact = random_artifact(seed=8)
    arrays = {name: array.copy() for name, array in artifact.arrays.items()}
    arrays["mean_head.W"][3, 0, 0] = np.nan
    return Artifact(manifest=artifact.manifest, arrays=arrays).to_bytes()


def png_bytes(width: int = 3, height: int = 2, seed: int = 0) -> bytes:
    """A small, valid RGB PNG (every chunk's CRC right, the image data complete)."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    rng = np.random.default_rng(seed)
    rows = b"".join(b"\x00" + rng.integers(0, 256, 3 * width, dtype=np.uint8).tobytes()
                    for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
