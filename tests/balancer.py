"""Helpers of the topology test: Debian's HAProxy with the deployment's own configuration
file, and a small load generator that records what every request saw."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


def haproxy_binary() -> str:
    binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    assert binary, "haproxy missing: scripts/system-deps.sh installs Debian's package"
    return binary


def static_environment(bind: str, replicas: Sequence[str]) -> dict[str, str]:
    """The cfg's variables for three fixed replicas instead of Docker's DNS."""
    assert len(replicas) == 3
    return {"LB_BIND": bind, **{f"LB_STATIC_{i}": r for i, r in enumerate(replicas, 1)}}


def check_config(env: Mapping[str, str]) -> subprocess.CompletedProcess:
    """`haproxy -c`: the binary itself validates the file with these variables."""
    return subprocess.run([haproxy_binary(), "-c", "-f", str(HAPROXY_CFG)],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=30)


@dataclass
class HAProxy:
    process: subprocess.Popen
    port: int
    log: Path

    @classmethod
    def start(cls, port: int, replicas: Sequence[str], log: Path) -> HAProxy:
        env = {**os.environ, **static_environment(f"127.0.0.1:{port}", replicas)}
        with open(log, "wb") as sink:  # -db: foreground, logs on stdout
            process = subprocess.Popen([haproxy_binary(), "-db", "-f", str(HAPROXY_CFG)],
                                       env=env, stdout=sink, stderr=subprocess.STDOUT)
        return cls(process, port, log)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Outcome:
    start: float
    end: float
    status: int  # 0: no HTTP answer at all
    served_by: str | None
    version: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Load:
    """Client threads posting one predict request after another through the balancer,
    each on its own keep-alive connection, until stopped or `limit` requests are sent."""

    port: int
    path: str
    body: bytes
    threads: int = 6
    limit: int | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._workers = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(self.threads)]

    def __enter__(self) -> Load:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)
            assert not worker.is_alive(), "a client thread hung"
        return self.outcomes

    def wait(self, timeout_s: float) -> list[Outcome]:
        """Until `limit` requests are answered (bounded), then stop."""
        deadline = time.monotonic() + timeout_s
        while any(w.is_alive() for w in self._workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.stop()

    def _take(self) -> bool:
        with self._lock:
            if self._stop.is_set() or (self.limit is not None and self._sent >= self.limit):
                return False
            self._sent += 1
            return True

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        while self._take():
            outcome = self._one(connection)
            if outcome.status == 0:
                connection.close()  # reconnect for the next request
            with self._lock:
                self.outcomes.append(outcome)
        connection.close()

    def _one(self, connection: http.client.HTTPConnection) -> Outcome:
        start = time.monotonic()
        try:
            connection.request("POST", self.path, body=self.body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(start, time.monotonic(), 0, None, None, repr(exc))
        end = time.monotonic()
        served_by = response.getheader("X-Served-By")
        if response.status != 200:
            return Outcome(start, end, response.status, served_by, None, data[:300].decode())
        return Outcome(start, end, 200, served_by, json.loads(data)["version"])


def summary(name: str, outcomes: Sequence[Outcome]) -> str:
    failed = [o for o in outcomes if not o.ok]
    by_replica = Counter(o.served_by for o in outcomes if o.ok)
    line = (f"{name}: {len(outcomes)} predicts, {len(failed)} failed; per replica "
            f"{dict(sorted(by_replica.items()))}")
    if failed:
        line += f"; first failures {[(o.status, o.error) for o in failed[:3]]}"
    return line


def answered_an_old_version_after_the_new(outcomes: Sequence[Outcome]) -> list[str]:
    """Per replica: requests that answered an older version than a request to the same
    replica that had already finished before they were sent (versions only grow here)."""
    problems = []
    for replica in {o.served_by for o in outcomes if o.ok}:
        mine = [o for o in outcomes if o.ok and o.served_by == replica]
        finished = sorted(mine, key=lambda o: o.end)
        newest, i = 0, 0
        for o in sorted(mine, key=lambda o: o.start):
            while i < len(finished) and finished[i].end < o.start:
                newest = max(newest, finished[i].version or 0)
                i += 1
            if o.version is not None and o.version < newest:
                problems.append(f"{replica} answered v{o.version} after v{newest}")
    return problems
