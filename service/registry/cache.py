"""Loaded model versions: `ModelCache` holds decoded posteriors. Versions are immutable,
so each is read from the registry, verified (sha256 of the blob, then the artifact's own
checks) and decoded once per process."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session

from service.artifact import Artifact, ArtifactError
from service.errors import ModelLoadError
from service.inference.posterior import Posterior
from service.registry.reads import (
    VersionRef,
    load_blob,
)

logger = logging.getLogger(__name__)


class ModelCache:
    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], Posterior] = {}
        self._last_used: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, ref: VersionRef) -> Posterior:
        posterior = self.get_loaded(ref)
        if posterior is not None:
            return posterior
        key = (ref.name, ref.version)
        # One loader at a time: a burst of first requests decodes the blob once.
        with self._lock:
            posterior = self._loaded.get(key)
            if posterior is None:
                posterior = self._load(session, ref)
                self._loaded[key] = posterior
            self._last_used[key] = time.monotonic()
        return posterior

    def evict(self, keep: set[tuple[str, int]], spare: int) -> list[tuple[str, int]]:
        """Drop loaded versions outside `keep`, except the `spare` most recently used
        (so a roll-back to the previous version is instant). A request already holding an
        evicted posterior finishes with it; the next one reloads it from the registry."""
        with self._lock:
            idle = sorted((key for key in self._loaded if key not in keep),
                          key=lambda key: self._last_used.get(key, 0.0), reverse=True)
            dropped = idle[spare:]
            for key in dropped:
                del self._loaded[key]
                self._last_used.pop(key, None)
        for name, version in dropped:
            logger.info("unloaded %s v%d (no alias points at it, not used recently)",
                        name, version)
        return dropped

    def get_loaded(self, ref: VersionRef) -> Posterior | None:
        """The version if it is loaded (marked as used, for eviction), else None: never
        touches the database."""
        key = (ref.name, ref.version)
        posterior = self._loaded.get(key)
        if posterior is not None:
            self._last_used[key] = time.monotonic()
        return posterior

    def peek(self, ref: VersionRef) -> Posterior | None:
        """Whether the version is loaded, without counting as a use."""
        return self._loaded.get((ref.name, ref.version))

    @staticmethod
    def _load(session: Session, ref: VersionRef) -> Posterior:
        data = load_blob(session, ref.name, ref.version)
        try:
            artifact = Artifact.from_bytes(data, expected_sha256=ref.sha256)
            posterior = Posterior(artifact)
        except ArtifactError as exc:
            logger.error("refusing to load %s v%d: %s", ref.name, ref.version, exc)
            raise ModelLoadError(f"model {ref.name!r} version {ref.version} cannot be "
                                 f"loaded: {exc}") from exc
        logger.info("loaded %s v%d (%d draws)", ref.name, ref.version, posterior.draws)
        return posterior

    def loaded_versions(self) -> list[tuple[str, int]]:
        return sorted(self._loaded)
