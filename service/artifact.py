"""The artifact: posterior draws of a heteroskedastic BNN plus its manifest.

This module is the single contract between training and the service. It needs only
numpy and the standard library, so the service image never imports PyMC/PyTensor.

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
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
MANIFEST_MEMBER = "manifest.json"
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

ACTIVATIONS = ("tanh",)
NOISE_LINKS = ("exp", "softplus")


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
    """Posterior draws (float64, per layer) and the manifest that describes them."""

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def draws(self) -> int:
        return int(self.manifest["inference"]["draws"])

    @property
    def hidden_sizes(self) -> list[int]:
        return [int(h) for h in self.manifest["architecture"]["hidden_sizes"]]

    def validate(self) -> None:
        """Check the manifest's required fields and every array's shape and finiteness."""
        validate_manifest(self.manifest)
        shapes = expected_shapes(self.draws, 1, self.hidden_sizes)
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
        recorded = self.manifest.get("arrays_sha256")
        if recorded is not None and recorded != content_sha256(self.arrays):
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
    def from_bytes(cls, data: bytes, expected_sha256: str | None = None) -> Artifact:
        """Decode and fully validate; refuse pickles, bad checksums and shape mismatches."""
        if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
            raise ArtifactError("artifact sha256 does not match the registry record "
                                "(the stored blob was altered or corrupted)")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
                if MANIFEST_MEMBER not in names:
                    raise ArtifactError(f"artifact has no {MANIFEST_MEMBER}")
                manifest = json.loads(archive.read(MANIFEST_MEMBER))
                arrays = {}
                for name in names:
                    if name == MANIFEST_MEMBER:
                        continue
                    if not name.endswith(".npy"):
                        raise ArtifactError(f"unexpected member {name!r} in artifact")
                    with archive.open(name) as member:
                        array = np.lib.format.read_array(member, allow_pickle=False)
                    if array.dtype.kind != "f":
                        raise ArtifactError(f"array {name!r} has dtype {array.dtype}, "
                                            "expected floating point")
                    arrays[name.removesuffix(".npy")] = array.astype(np.float64, copy=False)
        except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"artifact is not a valid npz archive: {exc}") from exc
        except ValueError as exc:  # numpy refuses object arrays when allow_pickle=False
            if isinstance(exc, ArtifactError):
                raise
            raise ArtifactError(f"artifact array could not be read safely: {exc}") from exc
        if "arrays_sha256" not in manifest:
            raise ArtifactError("manifest lacks arrays_sha256")
        artifact = cls(manifest=manifest, arrays=arrays)
        artifact.validate()
        return artifact


_REQUIRED_MANIFEST_KEYS = {
    "schema_version": int,
    "architecture": dict,
    "normalisation": dict,
    "training_domain": dict,
    "inference": dict,
}


def validate_manifest(manifest: Any) -> None:
    """Raise ArtifactError naming the first missing or ill-typed manifest field."""
    if not isinstance(manifest, dict):
        raise ArtifactError("manifest must be a JSON object")
    for key, kind in _REQUIRED_MANIFEST_KEYS.items():
        if not isinstance(manifest.get(key), kind):
            raise ArtifactError(f"manifest field {key!r} is missing or not a {kind.__name__}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise ArtifactError(f"manifest schema_version {manifest['schema_version']} is not "
                            f"supported (expected {SCHEMA_VERSION})")
    arch = manifest["architecture"]
    hidden = arch.get("hidden_sizes")
    if not (isinstance(hidden, list) and hidden
            and all(isinstance(h, int) and h > 0 for h in hidden)):
        raise ArtifactError("architecture.hidden_sizes must be a non-empty list of "
                            "positive integers")
    if arch.get("activation") not in ACTIVATIONS:
        raise ArtifactError(f"architecture.activation must be one of {ACTIVATIONS}")
    if arch.get("noise_link") not in NOISE_LINKS:
        raise ArtifactError(f"architecture.noise_link must be one of {NOISE_LINKS}")
    for key in ("x_mean", "x_scale", "y_mean", "y_scale"):
        value = manifest["normalisation"].get(key)
        if not isinstance(value, int | float) or not np.isfinite(value):
            raise ArtifactError(f"normalisation.{key} must be a finite number")
    for key in ("x_scale", "y_scale"):
        if manifest["normalisation"][key] <= 0:
            raise ArtifactError(f"normalisation.{key} must be positive")
    draws = manifest["inference"].get("draws")
    if not isinstance(draws, int) or draws < 2:
        raise ArtifactError("inference.draws must be an integer >= 2")
    from service.curves import validate_section  # imports this module

    try:
        validate_section(manifest.get("curve_model"))
    except ValueError as exc:
        raise ArtifactError(str(exc)) from exc
