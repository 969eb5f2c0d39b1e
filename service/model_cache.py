"""In-memory cache of loaded model versions. Versions are immutable, so a version is
read from the registry, verified and decoded once per process, then reused."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session

from service.artifact import Artifact, ArtifactError
from service.errors import ModelLoadError
from service.predictor import Posterior
from service.registry.repository import VersionRef, load_blob

logger = logging.getLogger(__name__)


class ModelCache:
    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], Posterior] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, ref: VersionRef) -> Posterior:
        key = (ref.name, ref.version)
        posterior = self._loaded.get(key)
        if posterior is not None:
            return posterior
        # One loader at a time: a burst of first requests decodes the blob once.
        with self._lock:
            posterior = self._loaded.get(key)
            if posterior is None:
                posterior = self._load(session, ref)
                self._loaded[key] = posterior
        return posterior

    @staticmethod
    def _load(session: Session, ref: VersionRef) -> Posterior:
        data = load_blob(session, ref.name, ref.version)
        try:
            artifact = Artifact.from_bytes(data, expected_sha256=ref.sha256)
        except ArtifactError as exc:
            logger.error("refusing to load %s v%d: %s", ref.name, ref.version, exc)
            raise ModelLoadError(f"model {ref.name!r} version {ref.version} cannot be "
                                 f"loaded: {exc}") from exc
        logger.info("loaded %s v%d (%d draws)", ref.name, ref.version, artifact.draws)
        return Posterior(artifact)

    def loaded_versions(self) -> list[tuple[str, int]]:
        return sorted(self._loaded)
