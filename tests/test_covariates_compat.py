"""Models without covariates are untouched by them: an artifact fitted by the code from
before covariates answers every request with the same bytes, and a strain-only fit builds
the same model and the same artifact (tests/legacy_fixture.py made the fixtures)."""

from __future__ import annotations

import json

import numpy as np

from service.artifact import Artifact
from tests.legacy_fixture import (
    ANSWERS,
    ARTIFACT,
    FIXTURES,
    fit_legacy_artifact,
    serve_and_answer,
)


def test_an_artifact_from_before_covariates_answers_byte_for_byte(database_url: str) -> None:
    recorded = json.loads(ANSWERS.read_text())
    answered = serve_and_answer(ARTIFACT.read_bytes(), database_url)
    assert len(answered) == len(recorded)
    for now, before in zip(answered, recorded, strict=True):
        assert now == before


def test_a_strain_only_model_has_the_log_density_it_always_had() -> None:
    from training.data import make_mooney_rivlin_group
    from training.model import BNNConfig, HeteroskedasticBNN

    frame = make_mooney_rivlin_group(materials=6, points=12, seed=3)
    x, y = frame["strain"].to_numpy(), frame["stress"].to_numpy()
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=4, seed=1)
    model = HeteroskedasticBNN(config).build_model((x - x.mean()) / x.std(),
                                                   (y - y.mean()) / y.std())
    logp = float(model.compile_logp()(model.initial_point()))
    expected = json.loads((FIXTURES / "legacy_model.json").read_text())
    np.testing.assert_allclose(logp, expected["logp_at_initial_point"], rtol=1e-12)


def _key_paths(document: object, prefix: str = "") -> set[str]:
    if not isinstance(document, dict):
        return set()
    paths = set()
    for key, value in document.items():
        path = f"{prefix}.{key}" if prefix else key
        paths.add(path)
        if key not in ("diagnostics", "metrics", "library_versions", "fit"):
            paths |= _key_paths(value, path)
    return paths


def test_a_strain_only_fit_gives_the_artifact_it_gave_before() -> None:
    legacy = Artifact.from_bytes(ARTIFACT.read_bytes())
    fitted = Artifact.from_bytes(fit_legacy_artifact())
    # Same manifest keys (no covariate sections appear), same weights for the same seed
    # and data (exactly on the machine that wrote the fixture; a different BLAS may round
    # differently, hence the tolerance).
    assert _key_paths(fitted.manifest) == _key_paths(legacy.manifest)
    assert "covariates" not in fitted.manifest and "tested_conditions" not in fitted.manifest
    assert sorted(fitted.arrays) == sorted(legacy.arrays)
    for name, array in legacy.arrays.items():
        np.testing.assert_allclose(fitted.arrays[name], array, rtol=1e-6, atol=1e-9,
                                   err_msg=name)
