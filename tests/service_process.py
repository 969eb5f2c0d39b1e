"""Helpers for tests and benchmarks: random-weight artifacts (no PyMC needed), a seeded
registry, and a real service process on loopback."""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from service.artifact import SCHEMA_VERSION, Artifact, expected_shapes
from service.manifest import EXTRAPOLATION_SCHEMA_VERSION
from service.registry.db import make_engine, make_session_factory, upgrade_to_head
from service.registry.writes import register, set_alias
from service.settings import PROJECT_ROOT


def random_artifact(
    draws: int = 50,
    hidden_sizes: tuple[int, ...] = (8,),
    seed: int = 0,
    noise_link: str = "exp",
    domain: tuple[float, float] = (-0.5, 0.5),
    covariates: int = 0,
) -> Artifact:
    """An artifact whose weights are random draws, with a plausible manifest; with
    `covariates` k > 0, a model taking k covariates (temperature, rate, ...) tested at a
    grid of 3 conditions per covariate (see COVARIATE_SPECS)."""
    rng = np.random.default_rng(seed)
    arrays = {
        name: rng.normal(0.0, 1.0 / np.sqrt(shape[1]) if name.endswith(".W") else 0.5, shape)
        for name, shape in expected_shapes(draws, 1 + covariates, list(hidden_sizes)).items()
    }
    arrays["sigma_head.b"] -= 1.5  # sigma well below the data scale, as in real fits
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "architecture": {
            "input_name": "strain", "input_unit": "1", "output_name": "stress",
            "output_unit": "MPa", "hidden_sizes": list(hidden_sizes), "activation": "tanh",
            "noise": "heteroskedastic", "noise_link": noise_link,
        },
        "normalisation": {"x_mean": 0.0, "x_scale": 0.3, "y_mean": -0.2, "y_scale": 0.8},
        "training_domain": {"min": domain[0], "max": domain[1]},
        "inference": {"method": "random", "draws": draws, "seed": seed},
        "diagnostics": {},
        "metrics": {},
    }
    if covariates:
        specs = COVARIATE_SPECS[:covariates]
        manifest["covariates"] = [
            {"name": name, "unit": unit, "mean": float(np.mean(levels)),
             "scale": float(np.std(levels)), "min": min(levels), "max": max(levels)}
            for name, unit, levels in specs]
        grid = np.meshgrid(*(levels for _, _, levels in specs), indexing="ij")
        manifest["tested_conditions"] = np.column_stack([g.ravel() for g in grid]).tolist()
    return Artifact(manifest=manifest, arrays=arrays)


def with_level_changes(artifact: Artifact, changes: list[float]) -> Artifact:
    """`artifact` (a model with covariates) with each covariate's `log_level_change`: the
    level's uncertainty beyond the tested range (service.inference.conditions)."""
    manifest = copy.deepcopy(artifact.manifest)
    manifest["schema_version"] = EXTRAPOLATION_SCHEMA_VERSION
    for covariate, change in zip(manifest["covariates"], changes, strict=True):
        covariate["log_level_change"] = change
    out = Artifact(manifest=manifest, arrays=artifact.arrays)
    out.validate()
    return out


# (name, unit, tested levels) of the covariates `random_artifact` gives a model.
COVARIATE_SPECS: list[tuple[str, str, list[float]]] = [
    ("temperature", "K", [273.15, 296.15, 353.15]),
    ("rate", "1/s", [0.001, 0.01, 0.1]),
    ("filler", "1", [0.1, 0.2, 0.3]),
]


def smooth_curve_section(basis: int = 8, length: float = 0.4, level: float = 0.04,
                         domain: tuple[float, float] = (-0.5, 0.5)) -> dict:
    """A `curve_model` manifest section (service.manifest.CurveModelSection) whose spline
    coefficients follow a smooth squared-exponential covariance and whose test noise is
    `level` of the scatter's variance: what a group fit stores, for tests and benchmarks."""
    centres = np.linspace(-1, 1, basis)
    cov = np.exp(-0.5 * ((centres[:, None] - centres[None, :]) / length) ** 2)
    chol = np.linalg.cholesky(cov + 1e-6 * np.eye(basis))
    return {"kind": "spline_factor_copula", "domain": {"min": domain[0], "max": domain[1]},
            "degree": 3, "between_cholesky": chol.tolist(),
            "within_log_variance": [float(np.log(level))] * basis}


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now and that this process has not handed
    out before (a caller may take several before starting anything on them).

    Between this probe and the server's own bind the port is free for anyone: under
    pytest-xdist, worker k of n only takes ports p with (p // 2) % n == k, so that two
    workers never race for the same port. (Halved: Linux hands bind() odd ports.)"""
    slot, slots = xdist_slot()
    for _ in range(10_000):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if (port // 2) % slots == slot and port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port for this worker")


def xdist_slot() -> tuple[int, int]:
    """(index of this pytest-xdist worker, number of workers); (0, 1) outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return 0, 1
    slots = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    return int(worker[2:]) % slots, slots  # a replacement for a crashed worker counts on


def seed_registry(database_url: str, name: str, artifacts: Sequence[Artifact],
                  production: int | None = 1) -> None:
    """Migrate the registry and register `artifacts` as versions 1..n of `name`, with
    alias production on version `production`."""
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        for artifact in artifacts:
            register(session, name, artifact.to_bytes(), actor="test")
        if production is not None:
            set_alias(session, name, "production", production, actor="test")
        session.commit()
    engine.dispose()


def service_command(port: int) -> list[str]:
    """The deployed command, `surrogate-serve` (SURROGATE_ACCESS_LOG=false silences its
    access lines)."""
    return [str(Path(sys.executable).parent / "surrogate-serve"), "--host", "127.0.0.1",
            "--port", str(port)]


@dataclass
class ServerProcess:
    """A real service process on loopback, its output captured in `log`."""

    url: str
    process: subprocess.Popen
    log: Path

    @classmethod
    def launch(cls, command: Sequence[str], port: int, env: Mapping[str, str],
               log: Path) -> ServerProcess:
        with open(log, "wb") as sink:
            process = subprocess.Popen(list(command), cwd=PROJECT_ROOT, stdout=sink,
                                       stderr=subprocess.STDOUT, env={**os.environ, **env})
        return cls(f"http://127.0.0.1:{port}", process, log)

    def wait_until_ok(self, path: str = "/healthz", timeout_s: float = 120.0) -> None:
        """Poll `path` until it answers 200; RuntimeError with the log's tail otherwise.
        (How long a start may take, not a bound on it: a machine busy with other work,
        parallel test workers included, stretches a 2-second start tenfold.)"""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def rss_kib(self) -> int:
        """Resident set size of the server process (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@dataclass(frozen=True)
class Registration:
    status: int
    version: int | None  # None unless the status is 201
    seconds: float


def register_concurrently(base_url: str, token: str, name: str,
                          artifacts: Sequence[bytes]) -> list[Registration]:
    """Upload every artifact through the admin API at the same moment (one thread each,
    released together), as operators or CI jobs racing each other would."""
    start = threading.Barrier(len(artifacts))

    def register(data: bytes) -> Registration:
        start.wait(timeout=60)
        began = time.perf_counter()
        response = httpx.post(f"{base_url}/admin/models/{name}/versions", content=data,
                              timeout=120, headers={"authorization": f"Bearer {token}",
                                                    "content-type": "application/octet-stream"})
        version = response.json()["version"] if response.status_code == 201 else None
        return Registration(response.status_code, version, time.perf_counter() - began)

    with ThreadPoolExecutor(len(artifacts)) as pool:
        return list(pool.map(register, artifacts))


@contextmanager
def read_only_directory(directory: Path) -> Iterator[list[str]]:
    """Make `directory` read-only for the commands run meanwhile, which are prefixed with
    the list this yields. A normal user loses write permission (restored afterwards); root,
    whom permissions do not stop, runs them in a private mount namespace where the
    directory is a read-only bind mount (Linux `unshare`)."""
    if os.geteuid() != 0:
        paths = [directory, *directory.rglob("*")]
        modes = {path: path.stat().st_mode for path in paths}
        for path in paths:
            path.chmod(modes[path] & ~0o222)
        try:
            yield []
        finally:
            for path in paths:
                path.chmod(modes[path])
        return
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True).returncode != 0:
        raise RuntimeError("cannot make a directory read-only for root: `unshare -m` fails")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    yield ["unshare", "-m", "--", "sh", "-c", script, str(directory)]
