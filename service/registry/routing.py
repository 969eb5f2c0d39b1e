"""The live view of the registry that routes requests.

`LiveRegistry` keeps an in-memory copy of the registry's routing table (aliases, latest
ready version, every version's checksum). A background thread polls the database every
`reload_interval_s`; when an alias or the latest version changes, it loads and verifies the
new version *before* swapping the routing table, so requests never wait for a load and a
version that fails to load is never served: the old one keeps answering and the failure is
reported (log and /readyz). Because requests resolve from memory, models already loaded
keep answering while the database is unavailable.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from service.errors import ModelLoadError
from service.inference.posterior import Posterior
from service.registry.cache import ModelCache
from service.registry.db import NOTIFY_CHANNEL
from service.registry.reads import (
    RegistrySnapshot,
    VersionRef,
    read_snapshot,
    resolve_version,
)
from service.registry.tables import VersionStatus

logger = logging.getLogger(__name__)

# A version that failed to load is retried after this long (its bytes are immutable, so
# retrying every poll would only repeat the same failure).
RETRY_FAILED_AFTER_S = 30.0



@dataclass(frozen=True)
class Routing:
    """What this replica serves. Replaced as a whole (one reference swap), never mutated."""

    snapshot: RegistrySnapshot
    aliases: dict[tuple[str, str], VersionRef]  # only versions that are loaded
    latest: dict[str, VersionRef]  # only versions that are loaded


EMPTY_ROUTING = Routing(RegistrySnapshot({}, {}, {}), {}, {})


@dataclass
class ReloadFailure:
    name: str
    version: int
    message: str
    at: float
    targets: list[str] = field(default_factory=list)


class LiveRegistry:
    """In-memory routing table kept current by polling the registry database."""

    def __init__(self, session_factory: Callable[[], Session], cache: ModelCache,
                 interval_s: float = 0.5, default_alias: str = "production",
                 spare_versions: int = 4, listen_url: str | None = None) -> None:
        self._session_factory = session_factory
        # PostgreSQL URL to LISTEN on for change announcements (polling stays the fallback).
        self.listen_url = listen_url
        self._wake = threading.Event()
        self._listener: threading.Thread | None = None
        self.cache = cache
        self.interval_s = interval_s
        self.default_alias = default_alias
        self.spare_versions = spare_versions
        self._routing = EMPTY_ROUTING
        self._refresh_lock = threading.Lock()
        self._polls_started = 0  # changed only under _refresh_lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures: dict[tuple[str, int], ReloadFailure] = {}
        self.last_success: float | None = None
        self.last_error: str | None = None

    # --- request path -------------------------------------------------------------------

    def resolve(self, session: Session, name: str, version: int | None = None,
                alias: str | None = None, default_alias: str = "production") -> VersionRef:
        """Which version answers, from memory when possible (no database round trip).

        Falls back to the database for what this replica has not seen yet (a model or
        version registered since the last poll), which raises the usual NotFoundError.
        """
        ref = self.resolve_in_memory(name, version, alias, default_alias)
        return ref if ref is not None else resolve_version(session, name, version, alias,
                                                           default_alias)

    def resolve_in_memory(self, name: str, version: int | None = None,
                          alias: str | None = None,
                          default_alias: str = "production") -> VersionRef | None:
        """`resolve` from the routing table alone: None where it would ask the database
        (which then answers the version, or the NotFoundError)."""
        routing = self._routing
        if version is not None:
            return routing.snapshot.ref(name, version)
        wanted = alias or default_alias
        ref = routing.aliases.get((name, wanted))
        if ref is None and alias is None and (name, wanted) not in routing.snapshot.aliases:
            ref = routing.latest.get(name)
        return ref

    def posterior(self, session: Session, ref: VersionRef) -> Posterior:
        return self.cache.get(session, ref)

    # --- polling ------------------------------------------------------------------------

    def catch_up(self) -> None:
        """Return once a poll that began after this call has finished: the caller's
        committed change is then served here. Concurrent callers share one poll rather
        than queueing one each (a burst of registrations costs a few polls, not one per
        registration)."""
        seen = self._polls_started
        with self._refresh_lock:
            if self._polls_started > seen:
                return  # a poll began after our change and, as we hold the lock, finished
            self._poll()

    def refresh(self) -> None:
        """Poll once: read the routing table, load what it newly points at, swap."""
        with self._refresh_lock:
            self._poll()

    def _poll(self) -> None:
        self._polls_started += 1
        try:
            with self._session_factory() as session:
                snapshot = read_snapshot(session)
                routing = self._build_routing(session, snapshot)
        except Exception as exc:  # database down, network, ...: keep serving
            # Readiness is public: it names the kind of failure only. The driver's
            # text (host, port, user) goes to the log.
            message = exc.__class__.__name__
            if self.last_error is None:
                logger.warning("registry poll failed, serving loaded models: %s: %s",
                               message, str(exc).splitlines()[0][:200] if str(exc) else "")
            self.last_error = message
            return
        if self.last_error is not None:
            logger.warning("registry reachable again")
        self._routing = routing  # the atomic swap
        self.last_error = None
        self.last_success = time.monotonic()
        served = {(r.name, r.version) for r in (*routing.aliases.values(),
                                                *routing.latest.values())}
        self.cache.evict(served, self.spare_versions)

    def _build_routing(self, session: Session, snapshot: RegistrySnapshot) -> Routing:
        old = self._routing
        aliases: dict[tuple[str, str], VersionRef] = {}
        for key, version in snapshot.aliases.items():
            ref = self._ready(session, snapshot, key[0], version, f"alias {key[1]!r}")
            if ref is None:
                ref = old.aliases.get(key)  # keep serving what it pointed at before
            if ref is not None:
                aliases[key] = ref
        latest: dict[str, VersionRef] = {}
        for name, version in snapshot.latest.items():
            if (name, self.default_alias) in snapshot.aliases:
                continue  # the default alias answers; the latest is only served by number
            ref = self._ready(session, snapshot, name, version, "latest")
            if ref is None:
                ref = old.latest.get(name)
            if ref is not None:
                latest[name] = ref
        targets = {(n, v) for (n, _), v in snapshot.aliases.items()} | {
            (n, v) for n, v in snapshot.latest.items()
            if (n, self.default_alias) not in snapshot.aliases}
        for key in [key for key in self.failures if key not in targets]:
            del self.failures[key]  # nothing points at it any more
        return Routing(snapshot, aliases, latest)

    def _ready(self, session: Session, snapshot: RegistrySnapshot, name: str, version: int,
               target: str) -> VersionRef | None:
        """The version's ref once it is loaded and verified, else None (failure recorded)."""
        ref = snapshot.ref(name, version)
        if ref is None or snapshot.versions[(name, version)][1] != VersionStatus.READY:
            return None
        if self.cache.peek(ref) is not None:
            return ref
        failure = self.failures.get((name, version))
        if failure is not None and time.monotonic() - failure.at < RETRY_FAILED_AFTER_S:
            if target not in failure.targets:
                failure.targets.append(target)
            return None
        try:
            self.cache.get(session, ref)
        except (OperationalError, InterfaceError):
            raise  # the database, not this version: the whole poll fails and is retried
        except Exception as exc:  # whatever one version raises, the others still route
            message = exc.message if isinstance(exc, ModelLoadError) else (
                f"model {name!r} version {version} cannot be loaded: "
                f"{exc.__class__.__name__}: {exc}")
            logger.error("reload of %s v%d (%s) failed, keeping the previous version: %s",
                         name, version, target, message)
            self.failures[(name, version)] = ReloadFailure(name, version, message,
                                                           time.monotonic(), [target])
            return None
        self.failures.pop((name, version), None)
        return ref

    def start(self) -> None:
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="registry-poller", daemon=True)
        self._thread.start()
        if self.listen_url is not None:
            self._listener = threading.Thread(target=self._listen, name="registry-listener",
                                              daemon=True)
            self._listener.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)  # a poll per interval, or at once when told
            self._wake.clear()
            if self._stop.is_set():
                return
            self.refresh()

    def _listen(self) -> None:
        """LISTEN for change announcements and wake the poller (PostgreSQL only). Any error
        just means waiting for the next regular poll while reconnecting."""
        import psycopg
        from sqlalchemy.engine import make_url

        conninfo = make_url(self.listen_url).set(drivername="postgresql").render_as_string(
            hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._wake.set()  # catch up on anything announced while disconnected
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self._wake.set()
            except Exception as exc:  # server down or restarting: polling covers it
                logger.debug("registry listener reconnecting: %s", exc.__class__.__name__)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in (self._thread, self._listener):
            if thread is not None:
                thread.join(timeout=10)
        self._thread = self._listener = None

    # --- reporting ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        routing = self._routing
        now = time.monotonic()
        # The database counts as unavailable when the last poll failed, or none succeeded
        # recently (a poll that hangs longer than the connect timeout).
        stale = self.last_success is None or now - self.last_success > max(
            10 * self.interval_s, 10.0)
        database_ok = self.last_error is None and not stale
        serving: dict[str, dict[str, int]] = {}
        for (name, alias), ref in sorted(routing.aliases.items()):
            serving.setdefault(name, {})[alias] = ref.version
        for name, ref in sorted(routing.latest.items()):
            serving.setdefault(name, {})["(latest)"] = ref.version
        failures = [
            {"model": f.name, "version": f.version, "for": f.targets, "message": f.message}
            for f in list(self.failures.values())  # copy: the poller may change it
        ]
        loaded = [f"{name}@{version}" for name, version in self.cache.loaded_versions()]
        snapshot = routing.snapshot
        targets = len(snapshot.aliases) + sum(
            1 for name in snapshot.latest if (name, self.default_alias) not in snapshot.aliases)
        if database_ok and not failures:
            state = "ready"
        elif (targets and not serving) or (not database_ok and not loaded):
            state = "unavailable"  # every default request would fail
        else:
            state = "degraded"  # some versions answer
        return {
            "status": state,
            "database": "ok" if database_ok else "unavailable",
            "database_error": self.last_error,
            "last_poll_age_s": None if self.last_success is None
            else round(now - self.last_success, 3),
            "poll_interval_s": self.interval_s,
            "serving": serving,
            "loaded": loaded,
            "reload_failures": failures,
        }
