"""The compiled kernel's on-disk cache: filled once, then only read.

Compiling the prediction kernel (kernel.py) takes 15-25 s; loading it from numba's cache
takes a fraction of a second. `surrogate-serve warmup` (a Dockerfile step) compiles every
variant into the directory NUMBA_CACHE_DIR names; replicas then load from it at start.

Numba's own cache insists on a writable directory (it writes a probe file before it even
reads), so a read-only container compiled afresh at every start. With NUMBA_CACHE_DIR set,
this cache reads that directory also when it is read-only, and a compile it cannot save
(another CPU than the image was built on, say) stays in memory instead of failing. Without
NUMBA_CACHE_DIR numba's usual places apply (`__pycache__` next to the source, if writable).
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

    def save_overload(self, sig: Any, data: Any) -> None:
        try:
            super().save_overload(sig, data)
        except OSError as exc:  # read-only directory: the compiled code stays in memory
            if not _ReadOnlyTolerantCache._warned:
                logger.warning("kernel cache %s is not writable (%s): compiled in memory "
                               "only; run `surrogate-serve warmup` where it is writable",
                               self.cache_path, exc.__class__.__name__)
                _ReadOnlyTolerantCache._warned = True


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

    def describe(self) -> str:
        where = (f"{self.directory} ({'writable' if self.writable else 'read-only'})"
                 if self.directory else "no cache directory")
        return (f"kernel: {self.loaded} variants loaded from the cache, {self.compiled} "
                f"compiled; {where}")


def report() -> CacheReport:
    """What the kernel's variants compiled so far in this process came from."""
    paths = {d.stats.cache_path for d in _dispatchers} - {None}
    directory = os.path.commonpath(sorted(paths)) if paths else None
    return CacheReport(
        directory=directory,
        writable=directory is not None and os.access(directory, os.W_OK),
        loaded=sum(sum(d.stats.cache_hits.values()) for d in _dispatchers),
        compiled=sum(sum(d.stats.cache_misses.values()) for d in _dispatchers),
    )
