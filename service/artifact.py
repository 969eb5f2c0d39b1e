"""The artifact: posterior draws of a heteroskedastic BNN plus its manifest.

This module is the single contract between training and the service. It needs only
numpy, pydantic (the typed manifest, service/manifest.py) and the standard library, so the
service image never imports PyMC/PyTensor.

File format: an uncompressed zip in `.npz` layout holding one `.npy` member per weight
array and a `manifest.json` member. Arrays are written with `allow_pickle=False`,
little-endian, with a fixed zip timestamp so the same content always gives the same bytes
(and hence the same sha256). The manifest records a content hash of the arrays, so a file
can be verified on its own; the registry additionally stores the sha256 of the whole file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from service.manifest import SCHEMA_VERSION, Manifest, ManifestError, parse_manifest

__all__ = ["SCHEMA_VERSION", "Artifact", "ArtifactError", "Manifest", "check_archive",
           "content_sha256", "expected_shapes", "layer_names", "sha256_hex"]

MANIFEST_MEMBER = "manifest.json"
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Bounds on what an archive may hold, checked from its directory before anything is
# decompressed: a few dozen weight arrays and a manifest.
MAX_MEMBERS = 64
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


class ArtifactError(ValueError):
    """The artifact is malformed, inconsistent with its manifest, or fails its checksum."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def layer_names(n_hidden_layers: int) -> list[str]:
    """Names of the dense layers, in forward order: trunk layers, then the two heads."""
    return [f"trunk{i}" for i in range(n_hidden_layers)] + ["mean_head", "sigma_head"]


def expected_shapes(
    draws: int, input_dim: int, hidden_sizes: list[int]
) -> dict[str, tuple[int, ...]]:
    """Shapes every artifact array must have, derived from the manifest's architecture."""
    shapes: dict[str, tuple[int, ...]] = {}
    fan_in = input_dim
    for i, width in enumerate(hidden_sizes):
        shapes[f"trunk{i}.W"] = (draws, fan_in, width)
        shapes[f"trunk{i}.b"] = (draws, width)
        fan_in = width
    for head in ("mean_head", "sigma_head"):
        shapes[f"{head}.W"] = (draws, fan_in, 1)
        shapes[f"{head}.b"] = (draws, 1)
    return shapes


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    """Hash of array names, dtypes, shapes and little-endian bytes, independent of the file."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name], dtype="<f8")
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """Posterior draws (float64, per layer) and the manifest that describes them.

    `manifest` is the JSON document as stored (training adds free-form sections to it);
    `spec` is the same document validated and typed, which is what computations read. It
    is parsed once, at its first use, and kept: a manifest is never changed in place once
    an artifact holds it (training builds a new artifact, `from_spec`, for each addition).
    """

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @classmethod
    def from_spec(cls, spec: Manifest, arrays: dict[str, np.ndarray]) -> Artifact:
        """The artifact of a typed manifest (what training builds); it is validated again
        at the first `spec`, since a copied-and-updated model is not."""
        return cls(manifest=spec.model_dump(mode="json", exclude_none=True), arrays=arrays)

    @cached_property
    def spec(self) -> Manifest:
        """The manifest, typed; ArtifactError naming the field if it is incomplete."""
        try:
            return parse_manifest(self.manifest)
        except ManifestError as exc:
            raise ArtifactError(str(exc)) from None

    @property
    def draws(self) -> int:
        return self.spec.inference.draws

    @property
    def hidden_sizes(self) -> list[int]:
        return list(self.spec.architecture.hidden_sizes)

    def validate(self) -> None:
        """Check the whole manifest and every array's shape and finiteness."""
        spec = self.spec
        shapes = expected_shapes(spec.inference.draws, spec.input_dim,
                                 spec.architecture.hidden_sizes)
        missing = sorted(set(shapes) - set(self.arrays))
        extra = sorted(set(self.arrays) - set(shapes))
        if missing or extra:
            raise ArtifactError(f"arrays do not match the architecture: missing {missing}, "
                                f"unexpected {extra}")
        for name, shape in shapes.items():
            array = self.arrays[name]
            if array.shape != shape:
                raise ArtifactError(f"array {name!r} has shape {array.shape}, manifest "
                                    f"architecture implies {shape}")
            if not np.all(np.isfinite(array)):
                raise ArtifactError(f"array {name!r} contains NaN or infinite values")
        if spec.arrays_sha256 is not None and spec.arrays_sha256 != content_sha256(self.arrays):
            raise ArtifactError("array content does not match manifest arrays_sha256")

    def to_bytes(self) -> bytes:
        """Encode as a deterministic npz (no pickle); the manifest gains `arrays_sha256`."""
        manifest = dict(self.manifest, arrays_sha256=content_sha256(self.arrays))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in sorted(self.arrays):
                member = io.BytesIO()
                array = np.ascontiguousarray(self.arrays[name], dtype="<f8")
                np.lib.format.write_array(member, array, allow_pickle=False)
                archive.writestr(zipfile.ZipInfo(f"{name}.npy", _FIXED_ZIP_TIME),
                                 member.getvalue())
            archive.writestr(zipfile.ZipInfo(MANIFEST_MEMBER, _FIXED_ZIP_TIME),
                             json.dumps(manifest, sort_keys=True, indent=1).encode())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, expected_sha256: str | None = None,
                   max_unpacked_bytes: int | None = None) -> Artifact:
        """Decode and fully validate; refuse pickles, bad checksums, shape mismatches and
        archives built to break the decoder (every such failure is an ArtifactError)."""
        if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
            raise ArtifactError("artifact sha256 does not match the registry record "
                                "(the stored blob was altered or corrupted)")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = check_archive(archive, max_unpacked_bytes)
                if MANIFEST_MEMBER not in members:
                    raise ArtifactError(f"artifact has no {MANIFEST_MEMBER}")
                manifest = _read_manifest(archive, members[MANIFEST_MEMBER])
                arrays = {}
                for name, info in members.items():
                    if name == MANIFEST_MEMBER:
                        continue
                    if not name.endswith(".npy"):
                        raise ArtifactError(f"unexpected member {name!r} in artifact")
                    arrays[name.removesuffix(".npy")] = _read_array(archive, info)
        except ArtifactError:
            raise
        except zipfile.BadZipFile as exc:
            raise ArtifactError(f"artifact is not a valid npz archive: {exc}") from exc
        except Exception as exc:  # zlib, EOF, struct, memory, ...: the bytes are bad
            raise ArtifactError(f"artifact is not a valid npz archive: "
                                f"{exc.__class__.__name__}: {exc}") from exc
        if not isinstance(manifest, dict) or "arrays_sha256" not in manifest:
            raise ArtifactError("manifest lacks arrays_sha256")
        artifact = cls(manifest=manifest, arrays=arrays)
        artifact.validate()
        return artifact


def check_archive(archive: zipfile.ZipFile,
                  max_unpacked_bytes: int | None = None) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, once its directory shows nothing a decoder should
    not be handed: too many members, more unpacked bytes than allowed (a zip bomb),
    compression other than stored/deflate, encryption, or a name used twice."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ArtifactError(f"artifact has {len(infos)} members; at most {MAX_MEMBERS} "
                            "are allowed")
    unpacked = sum(info.file_size for info in infos)
    if max_unpacked_bytes is not None and unpacked > max_unpacked_bytes:
        raise ArtifactError(f"artifact unpacks to {unpacked} bytes; at most "
                            f"{max_unpacked_bytes} are allowed")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArtifactError(f"member {info.filename!r} uses an unsupported compression")
        if info.flag_bits & 0x1:
            raise ArtifactError(f"member {info.filename!r} is encrypted")
        if info.filename in members:
            raise ArtifactError(f"member {info.filename!r} appears twice")
        members[info.filename] = info
    return members


def _read_manifest(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{MANIFEST_MEMBER} is {info.file_size} bytes; at most "
                            f"{MAX_MANIFEST_BYTES} are allowed")
    try:
        return json.loads(archive.read(info))
    except RecursionError:
        raise ArtifactError(f"{MANIFEST_MEMBER} is nested too deeply") from None
    except ValueError as exc:  # malformed JSON, not UTF-8, an integer too long
        raise ArtifactError(f"{MANIFEST_MEMBER} is not valid JSON: {exc}") from exc


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member as float64, its header checked against the member's size before
    anything is allocated (a header may declare any shape)."""
    name = info.filename
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ArtifactError(f"array {name!r} uses .npy format {version}")
        if dtype.hasobject:
            raise ArtifactError(f"array {name!r}: Object arrays cannot be loaded when "
                                "allow_pickle=False (pickles are refused)")
        if dtype.kind != "f":
            raise ArtifactError(f"array {name!r} has dtype {dtype}, expected floating point")
        payload = info.file_size - member.tell()
        declared = math.prod(shape)  # exact: a hostile shape cannot overflow it
        if declared * dtype.itemsize != payload:
            raise ArtifactError(f"array {name!r}: its header declares shape {shape} "
                                f"({declared * dtype.itemsize} bytes) but the member holds "
                                f"{payload}")
        flat = np.frombuffer(member.read(payload), dtype=dtype)
    array = flat.reshape(shape, order="F" if fortran_order else "C")
    return array.astype(np.float64)
