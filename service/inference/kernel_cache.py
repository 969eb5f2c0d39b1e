"""The compiled kernel's on-disk cache: filled once, then only read.

Compiling the prediction kernel (kernel.py) takes 15-25 s; loading it from numba's cache
takes a fraction of a second. `surrogate-serve warmup` (a Dockerfile step) compiles every
variant into the directory NUMBA_CACHE_DIR names; replicas then load from it at start.

Numba's own cache insists on a writable directory (it writes a probe file before it even
reads), so a read-only container compiled afresh at every start. With NUMBA_CACHE_DIR set,
this cache reads that directory also when it is read-only, and a compile it cannot save
(another CPU than the image was built on, say) stays in memory instead of failing. Without
NUMBA_CACHE_DIR numba's usual places apply (`__pycache__` next to the source, if writable).

A cache file that cannot be read back (a truncated `.nbc`, a garbage `.nbi`: a full disk
during warmup, a damaged image layer) never stops a replica: numba would raise from the
kernel's import, so every replica of the image would fail to start. Such a file is skipped
with a warning, the variant compiles in memory, and where the directory is writable the
index is rewritten so the next start loads again. `report()` counts the skipped files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from numba.core import caching, config
from numba.core.dispatcher import Dispatcher

logger = logging.getLogger(__name__)

_dispatchers: list[Dispatcher] = []
_unreadable: set[str] = set()  # index files of functions whose cache could not be read back


class _CacheDirLocator(caching.UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR, read-only or not."""

    def ensure_cache_path(self) -> None:
        path = self.get_cache_path()
        if os.path.isdir(path) and not os.access(path, os.W_OK):
            return  # read what is there; saving fails later and is skipped
        super().ensure_cache_path()


class _CacheImpl(caching.CompileResultCacheImpl):
    @property
    def _locator_classes(self) -> list[type]:  # read by numba's _CacheImpl.__init__
        # A directory the operator named is the only place: falling back to __pycache__
        # would hide a missing image cache behind a checkout's own.
        if config.CACHE_DIR:
            return [_CacheDirLocator]
        return caching.CompileResultCacheImpl._locator_classes


class _ReadOnlyTolerantCache(caching.FunctionCache):
    _impl_class = _CacheImpl
    _warned = False

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        try:
            return super().load_overload(sig, target_context)
        except Exception as exc:  # noqa: BLE001 - unpickling garbage raises anything
            # None makes numba compile the variant, as for a cache miss.
            self._note_unreadable(exc)
            return None

    def _note_unreadable(self, exc: Exception) -> None:
        # The function's index names it (and its .nbc files share the index's stem).
        index = self._cache_file._index_path
        if index not in _unreadable:
            logger.warning("kernel cache entry %s cannot be read (%s: %s): skipped, the "
                           "kernel compiles in memory; run `surrogate-serve warmup` to "
                           "rewrite it", index, exc.__class__.__name__, str(exc)[:200])
        _unreadable.add(index)

    def save_overload(self, sig: Any, data: Any) -> None:
        try:
            self._save_over_unreadable(sig, data)
        except OSError as exc:  # read-only directory: the compiled code stays in memory
            if not _ReadOnlyTolerantCache._warned:
                logger.warning("kernel cache %s is not writable (%s): compiled in memory "
                               "only; run `surrogate-serve warmup` where it is writable",
                               self.cache_path, exc.__class__.__name__)
                _ReadOnlyTolerantCache._warned = True

    def _save_over_unreadable(self, sig: Any, data: Any) -> None:
        """Save; an index that cannot be read (numba reads it first) is replaced by an
        empty one. OSError (a read-only directory) goes to the caller."""
        try:
            super().save_overload(sig, data)
        except Exception as exc:  # noqa: BLE001 - unpickling garbage raises anything
            if isinstance(exc, OSError):
                raise
            self._note_unreadable(exc)
            self._cache_file.flush()  # writes an empty index
            super().save_overload(sig, data)


def enable(dispatcher: Dispatcher) -> Dispatcher:
    """Give a numba dispatcher (compiled without cache=True) this on-disk cache.

    Does what Dispatcher.enable_caching does, with the cache class above; without any usable
    directory the dispatcher compiles in memory, as numba does then."""
    _dispatchers.append(dispatcher)
    try:
        dispatcher._cache = _ReadOnlyTolerantCache(dispatcher.py_func)
    except RuntimeError:  # numba found no usable cache directory
        pass
    return dispatcher


@dataclass(frozen=True)
class CacheReport:
    directory: str | None  # where the cache is, None when there is none
    writable: bool
    loaded: int  # compiled variants read from the cache
    compiled: int  # compiled variants that were not in it
    unreadable: tuple[str, ...] = ()  # index files of entries that could not be read

    def describe(self) -> str:
        where = (f"{self.directory} ({'writable' if self.writable else 'read-only'})"
                 if self.directory else "no cache directory")
        skipped = (f"; unreadable cache entries skipped: {', '.join(self.unreadable)}"
                   if self.unreadable else "")
        return (f"kernel: {self.loaded} variants loaded from the cache, {self.compiled} "
                f"compiled; {where}{skipped}")


def report() -> CacheReport:
    """What the kernel's variants compiled so far in this process came from."""
    paths = {d.stats.cache_path for d in _dispatchers} - {None}
    directory = os.path.commonpath(sorted(paths)) if paths else None
    return CacheReport(
        directory=directory,
        writable=directory is not None and os.access(directory, os.W_OK),
        loaded=sum(sum(d.stats.cache_hits.values()) for d in _dispatchers),
        compiled=sum(sum(d.stats.cache_misses.values()) for d in _dispatchers),
        unreadable=tuple(sorted(_unreadable)),
    )
