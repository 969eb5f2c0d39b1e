import io
import zipfile

import numpy as np
import pytest

from service.artifact import MANIFEST_MEMBER, Artifact, ArtifactError, sha256_hex
from tests.service_process import random_artifact


def test_round_trip_preserves_arrays_and_manifest() -> None:
    artifact = random_artifact(draws=7, hidden_sizes=(5, 3))
    decoded = Artifact.from_bytes(artifact.to_bytes())
    assert decoded.manifest["architecture"] == artifact.manifest["architecture"]
    assert set(decoded.arrays) == set(artifact.arrays)
    for name, array in artifact.arrays.items():
        np.testing.assert_array_equal(decoded.arrays[name], array)


def test_same_content_encodes_to_identical_bytes() -> None:
    assert random_artifact(seed=3).to_bytes() == random_artifact(seed=3).to_bytes()


def test_wrong_expected_sha256_is_refused() -> None:
    data = random_artifact().to_bytes()
    Artifact.from_bytes(data, expected_sha256=sha256_hex(data))
    with pytest.raises(ArtifactError, match="sha256"):
        Artifact.from_bytes(data, expected_sha256="0" * 64)


def _rewrite_member(data: bytes, member: str, payload: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, payload if name == member else src.read(name))
    return out.getvalue()


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_changed_weights_fail_the_content_hash() -> None:
    artifact = random_artifact()
    tampered_array = artifact.arrays["mean_head.b"] + 1.0
    data = _rewrite_member(artifact.to_bytes(), "mean_head.b.npy", _npy(tampered_array))
    with pytest.raises(ArtifactError, match="arrays_sha256"):
        Artifact.from_bytes(data)


def test_pickled_object_array_is_refused() -> None:
    evil = np.empty(1, dtype=object)
    evil[0] = {"not": "weights"}
    data = _rewrite_member(random_artifact().to_bytes(), "mean_head.b.npy",
                           _npy(evil, allow_pickle=True))
    with pytest.raises(ArtifactError, match="safely|pickle"):
        Artifact.from_bytes(data)


def test_shape_mismatch_with_manifest_is_refused() -> None:
    artifact = random_artifact(draws=5)
    artifact.arrays["trunk0.W"] = artifact.arrays["trunk0.W"][:, :, :3]
    with pytest.raises(ArtifactError, match="trunk0.W"):
        artifact.validate()


def test_non_finite_draws_are_refused() -> None:
    artifact = random_artifact()
    artifact.arrays["sigma_head.W"][0, 0, 0] = np.nan
    with pytest.raises(ArtifactError, match="NaN"):
        Artifact.from_bytes(artifact.to_bytes())


def test_garbage_bytes_are_refused() -> None:
    with pytest.raises(ArtifactError, match="npz"):
        Artifact.from_bytes(b"definitely not a zip file")


def test_missing_manifest_field_is_named() -> None:
    artifact = random_artifact()
    del artifact.manifest["normalisation"]
    with pytest.raises(ArtifactError, match="normalisation"):
        artifact.validate()


def test_manifest_member_is_json_inside_the_archive() -> None:
    with zipfile.ZipFile(io.BytesIO(random_artifact().to_bytes())) as archive:
        assert MANIFEST_MEMBER in archive.namelist()
