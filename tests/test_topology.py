"""Acceptance: the deployment's topology with the real binaries, no Docker.

Debian's HAProxy runs deploy/haproxy/haproxy.cfg (the file compose uses) in front of
three `surrogate-serve` replicas on 127.0.0.1 over one real PostgreSQL registry. Under a
load of predict requests through the balancer:
1. 3,000 predicts reach all three replicas;
2. a replica killed with SIGKILL fails no request;
3. a replica sent SIGTERM fails no request, and exits after draining;
4. moving the alias 10 times fails no request, and no replica answers an older version
   after it answered a newer one;
5. PostgreSQL stopped for 10 s fails no predict for the loaded version, /readyz says
   degraded, and everything recovers without a restart.
Each phase prints its request counts and failures. Counts and waits are bounded.

Why one module of this size: the phases share one balancer, three replicas and one
PostgreSQL server, which are slow to start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.balancer import (
    HAProxy,
    Load,
    Outcome,
    answered_an_old_version_after_the_new,
    summary,
)
from tests.postgres_server import PostgresServer, find_pg_bin
from tests.service_process import ServerProcess, free_port, random_artifact, seed_registry
from tests.service_process import service_command as serve_command

BIN = Path(sys.executable).parent
TOKEN = "topology-test-token-51d0"
MODEL = "topo"
PATH = f"/v1/models/{MODEL}/predict"
BODY = b'{"strain": [-0.2, 0.0, 0.2]}'
DRAIN_S = 2.0  # longer than HAProxy's detection (2 checks 0.5 s apart)
NAMES = ("api1", "api2", "api3")  # the cfg's server names, in LB_STATIC_1..3 order
VERSIONS = 11  # production starts on 1; phase 4 moves it to 2, 3, ..., 11

pytestmark = pytest.mark.slow  # 1-2 minutes: replicas start, phase 5 waits 10 s


@dataclass
class Topology:
    postgres: PostgresServer
    database_url: str
    ports: list[int]
    grpc_ports: list[int]
    replicas: list[ServerProcess]
    balancer: HAProxy
    folder: Path

    def launch(self, i: int) -> ServerProcess:
        env = {"SURROGATE_DATABASE_URL": self.database_url, "SURROGATE_ADMIN_TOKEN": TOKEN,
               "SURROGATE_GRPC_PORT": str(self.grpc_ports[i]), "SURROGATE_GRPC_HOST": "127.0.0.1",
               "SURROGATE_SHUTDOWN_DRAIN_S": str(DRAIN_S),
               "SURROGATE_RELOAD_INTERVAL_S": "0.2", "SURROGATE_DATABASE_TIMEOUT_S": "1",
               "SURROGATE_ACCESS_LOG": "false", "SURROGATE_LOG_FORMAT": "text"}
        log = self.folder / f"{NAMES[i]}-{time.monotonic_ns()}.log"
        replica = ServerProcess.launch(serve_command(self.ports[i]), self.ports[i], env, log)
        if i < len(self.replicas):
            self.replicas[i] = replica
        else:
            self.replicas.append(replica)
        return replica

    def ensure_serving(self, restart: bool = True) -> set[str]:
        """Restart what an earlier phase stopped (all at once), or not, then wait until the
        balancer routes to every running replica; returns their names."""
        for i, replica in enumerate(self.replicas):
            if restart and replica.process.poll() is not None:
                self.launch(i)
        running = {NAMES[i] for i, r in enumerate(self.replicas) if r.process.poll() is None}
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.wait_until_ok("/readyz")
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while seen != running:
                assert time.monotonic() < deadline, f"the balancer only routes to {seen}"
                response = client.post(PATH, content=BODY,
                                       headers={"Content-Type": "application/json"})
                if response.status_code == 200:  # else 503: no replica marked up yet
                    seen.add(response.headers["X-Served-By"])
                else:
                    time.sleep(0.1)
        return running

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.balancer.port}"

    def move_alias(self, version: int) -> None:
        response = httpx.put(f"{self.url}/admin/models/{MODEL}/aliases/production",
                             json={"version": version}, timeout=10,
                             headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text

    def wait_until_all_serve(self, version: int, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        for replica in self.replicas:
            while httpx.post(f"{replica.url}{PATH}", content=BODY, timeout=10,
                             headers={"Content-Type": "application/json"}
                             ).json()["version"] != version:
                assert time.monotonic() < deadline, f"{replica.url} never served v{version}"
                time.sleep(0.05)

    def load(self, limit: int | None = None) -> Load:
        return Load(self.balancer.port, PATH, BODY, threads=6, limit=limit)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("SURROGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries not found")
        pytest.skip("PostgreSQL binaries not installed")
    folder = tmp_path_factory.mktemp("topology")
    # Fill the kernel cache once, so three replicas starting together do not all compile.
    warmup = subprocess.Popen([str(BIN / "surrogate-serve"), "warmup"])
    postgres = PostgresServer.create(bin_dir)  # its own server: phase 5 stops it
    topology = None
    try:
        assert warmup.wait(timeout=300) == 0
        postgres.start()
        url = postgres.url()
        seed_registry(url, MODEL, [random_artifact(seed=s, draws=20) for s in range(VERSIONS)])
        ports, grpc_ports = [free_port() for _ in NAMES], [free_port() for _ in NAMES]
        balancer = HAProxy.start(free_port(), [f"127.0.0.1:{p}" for p in ports], free_port(),
                                 [f"127.0.0.1:{p}" for p in grpc_ports], folder / "haproxy.log")
        topology = Topology(postgres, url, ports, grpc_ports, [], balancer, folder)
        for i in range(len(NAMES)):
            topology.launch(i)
        topology.ensure_serving()
        yield topology
    finally:
        if topology is not None:
            for replica in topology.replicas:  # all drain at once
                replica.process.terminate()
            for replica in topology.replicas:
                replica.stop()
            topology.balancer.stop()
        postgres.destroy()


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a phase's figures to the terminal, also under `pytest -q`."""
    def emit(line: str) -> None:
        with capsys.disabled():
            print(f"\n[topology] {line}", flush=True)
    return emit


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.ok]


def test_3000_predicts_through_the_balancer_reach_all_three_replicas(
        topology: Topology, report: Callable[[str], None]) -> None:
    topology.ensure_serving()
    with topology.load(limit=3000) as load:
        outcomes = load.wait(timeout_s=120)
    report(summary("1. 3000 predicts through one port", outcomes))
    assert len(outcomes) == 3000
    assert failures(outcomes) == []
    assert {o.served_by for o in outcomes} == set(NAMES)


def test_grpc_infer_through_the_balancer_reaches_all_three_replicas(
        topology: Topology, report: Callable[[str], None]) -> None:
    topology.ensure_serving()
    request = service_pb2.ModelInferRequest(model_name=MODEL)
    tensor = request.inputs.add(name="strain", datatype="FP64", shape=[3])
    tensor.contents.fp64_contents.extend([-0.2, 0.0, 0.2])
    served_by: Counter[str] = Counter()
    # One channel per call: HTTP/2 multiplexes a channel's calls over one connection,
    # which HAProxy balances per request all the same; fresh channels also exercise connects.
    for _ in range(150):
        with grpc.insecure_channel(f"127.0.0.1:{topology.balancer.grpc_port}") as channel:
            response, call = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer \
                .with_call(request, timeout=10)
        assert response.model_name == MODEL and len(response.raw_output_contents) > 0
        served_by[dict(call.initial_metadata())["x-served-by"]] += 1
    report(f"1b. 150 gRPC ModelInfer calls through one port: 0 failed; per replica "
           f"{dict(sorted(served_by.items()))}")
    assert set(served_by) == {"grpc1", "grpc2", "grpc3"}


def test_a_replica_killed_under_load_fails_no_request(
        topology: Topology, report: Callable[[str], None]) -> None:
    topology.ensure_serving()
    victim = topology.replicas[0]
    with topology.load() as load:
        time.sleep(1.0)
        victim.process.kill()
        killed = time.monotonic()
        time.sleep(3.0)
        outcomes = load.stop()
    victim.process.wait(timeout=10)
    after = [o for o in outcomes if o.start > killed]
    report(summary("2. kill -9 api1 under load", outcomes) + f"; {len(after)} sent after "
           "the kill")
    assert failures(outcomes) == []
    assert len(after) > 20 and {o.served_by for o in after if o.end > killed + 2} <= {
        "api2", "api3"}


def test_a_replica_sent_sigterm_under_load_drains_and_fails_no_request(
        topology: Topology, report: Callable[[str], None]) -> None:
    # api1 may still be down from phase 2: restarting it is phase 4's, together with api2.
    assert len(topology.ensure_serving(restart=False) - {"api2"}) >= 1
    victim = topology.replicas[1]
    with topology.load() as load:
        time.sleep(1.0)
        victim.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = victim.process.wait(timeout=DRAIN_S + 20)
        exited = time.monotonic() - signalled
        time.sleep(0.5)
        outcomes = load.stop()
    during_drain = [o for o in outcomes if o.served_by == "api2" and o.start > signalled]
    report(summary("3. SIGTERM api2 under load", outcomes) + f"; api2 answered "
           f"{len(during_drain)} sent after SIGTERM and exited {exited:.2f} s after it "
           f"(drain {DRAIN_S} s)")
    assert failures(outcomes) == []
    assert exited >= DRAIN_S  # it kept serving for the drain period
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    log = victim.log.read_text()
    assert "SIGTERM: not ready any more; draining" in log and "drained; closing" in log


def test_moving_the_alias_ten_times_under_load_fails_nothing_and_never_goes_back(
        topology: Topology, report: Callable[[str], None]) -> None:
    topology.ensure_serving()
    topology.move_alias(1)
    topology.wait_until_all_serve(1, 5)
    with topology.load() as load:
        for version in range(2, VERSIONS + 1):
            time.sleep(0.5)  # longer than the poll interval: every replica sees each move
            topology.move_alias(version)
        topology.wait_until_all_serve(VERSIONS, 5)
        time.sleep(0.3)
        outcomes = load.stop()
    went_back = answered_an_old_version_after_the_new(outcomes)
    versions = sorted({o.version for o in outcomes if o.ok})
    report(summary("4. alias moved 10x under load", outcomes) + f"; versions answered "
           f"{versions}; {len(went_back)} answers older than one already given")
    assert failures(outcomes) == []
    assert went_back == []
    assert versions[-1] == VERSIONS and len(versions) >= 5


def test_postgresql_stopped_for_10_s_under_load_fails_no_predict_and_recovers(
        topology: Topology, report: Callable[[str], None]) -> None:
    topology.ensure_serving()
    pids = [replica.process.pid for replica in topology.replicas]
    with topology.load() as load:
        time.sleep(0.5)
        topology.postgres.stop()
        stopped = time.monotonic()
        for replica in topology.replicas:
            while (ready := httpx.get(f"{replica.url}/readyz", timeout=5)).json()[
                    "database"] != "unavailable":
                assert time.monotonic() - stopped < 5, "readiness never noticed"
                time.sleep(0.05)
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        noticed = time.monotonic() - stopped
        through_balancer = httpx.get(f"{topology.url}/readyz", timeout=5).json()["status"]
        time.sleep(max(0.0, stopped + 10 - time.monotonic()))
        topology.postgres.start()
        restarted = time.monotonic()
        for replica in topology.replicas:
            while httpx.get(f"{replica.url}/readyz", timeout=5).json()["status"] != "ready":
                assert time.monotonic() - restarted < 15, "did not recover"
                time.sleep(0.05)
        recovered = time.monotonic() - restarted
        time.sleep(0.3)
        outcomes = load.stop()
    outage = [o for o in outcomes if stopped <= o.start <= restarted]
    report(summary("5. PostgreSQL stopped 10 s under load", outcomes) + f"; {len(outage)} "
           f"during the outage; all replicas degraded after {noticed:.2f} s, ready "
           f"{recovered:.2f} s after the restart")
    assert failures(outcomes) == []
    assert len(outage) > 100
    assert through_balancer == "degraded"
    topology.move_alias(1)  # writes work again, and every replica follows
    topology.wait_until_all_serve(1, 5)
    assert [replica.process.pid for replica in topology.replicas] == pids  # no restart
