"""The deployment files, checked offline by the tools that will run them: the Kubernetes
manifests against the API schemas of a pinned Kubernetes version (kubernetes-validate),
the balancer configuration by HAProxy itself, and every variable compose and the manifests
set against the service's real settings."""

from __future__ import annotations

import copy
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.settings import Settings
from tests.balancer import HAPROXY_CFG, check_config, static_environment

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest minor version still supported when written
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
# The training Job (tests/test_train_job.py) is not part of the service's deployment.
SERVICE_MANIFESTS = [p for p in MANIFESTS if p.name != "train-indexed-job.yaml"]


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_resources() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in SERVICE_MANIFESTS for doc in documents(path)}


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifest_is_valid_for_the_pinned_version(path: Path) -> None:
    for doc in documents(path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_manifest_with_a_misspelt_field() -> None:
    deployment = copy.deepcopy(all_resources()["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_manifests_hold_every_piece_of_a_cluster_deployment() -> None:
    resources = all_resources()
    assert set(resources) == {"ConfigMap", "Secret", "Job", "Deployment", "Service",
                              "HorizontalPodAutoscaler", "PodDisruptionBudget",
                              "NetworkPolicy"}
    kustomized = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    steps_of_their_own = {"secret.template.yaml", "migrate-job.yaml", "train-indexed-job.yaml"}
    assert sorted(kustomized) == [p.name for p in MANIFESTS if p.name not in steps_of_their_own]
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["topologySpreadConstraints"]
    assert {p["containerPort"] for p in api["ports"]} == {8000, 8001, 8002}
    assert {p["port"] for p in resources["Service"]["spec"]["ports"]} == {8000, 8001, 8002}
    assert resources["Job"]["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "surrogate-serve", "migrate"]
    assert set(resources["Secret"]["stringData"]) == {"SURROGATE_ADMIN_TOKEN",
                                                      "SURROGATE_DATABASE_URL"}


def test_the_network_policy_keeps_grpc_and_the_admin_api_to_labelled_pods() -> None:
    resources = all_resources()
    policy = resources["NetworkPolicy"]["spec"]
    pod = resources["Deployment"]["spec"]["template"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert policy["policyTypes"] == ["Ingress"]  # what no rule admits is refused
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    config = resources["ConfigMap"]["data"]
    assert ports["grpc"] == int(config["SURROGATE_GRPC_PORT"])
    assert ports["admin"] == int(config["SURROGATE_ADMIN_PORT"])
    peers_by_port: dict[str, list[dict]] = {}
    for rule in policy["ingress"]:
        for port in rule["ports"]:
            peers_by_port.setdefault(port["port"], []).extend(rule["from"])
    assert set(peers_by_port) == set(ports)  # every named port, nothing else
    assert peers_by_port["http"] == [{"namespaceSelector": {}}]  # the whole cluster
    for name, label in (("grpc", "material-surrogate/grpc-client"),
                        ("admin", "material-surrogate/admin-client")):
        (peer,) = peers_by_port[name]
        assert peer["podSelector"] == {"matchLabels": {label: "true"}}, name


def test_every_image_the_manifests_run_is_the_pinned_release() -> None:
    release = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    resources = all_resources()
    images = [c["image"] for kind in ("Deployment", "Job")
              for c in resources[kind]["spec"]["template"]["spec"]["containers"]]
    assert images and all(image == f"material-surrogate:{release}" for image in images)
    kustomized = yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"]
    assert kustomized == [{"name": "material-surrogate", "newTag": release}]


def setting_names() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def unknown_settings(names: set[str]) -> set[str]:
    return names - setting_names()


def service_variables() -> dict[str, set[str]]:
    """Every variable set for the service: compose's service containers (not PostgreSQL's,
    not HAProxy's) and the manifests (ConfigMap, Secret, container env)."""
    found: dict[str, set[str]] = {}
    for name, service in compose()["services"].items():
        if name not in ("db", "lb"):
            found[f"compose {name}"] = set(service.get("environment", {}))
    resources = all_resources()
    found["k8s ConfigMap"] = set(resources["ConfigMap"]["data"])
    found["k8s Secret"] = set(resources["Secret"]["stringData"])
    for kind in ("Deployment", "Job"):
        for container in resources[kind]["spec"]["template"]["spec"]["containers"]:
            found[f"k8s {kind}"] = {e["name"] for e in container.get("env", [])}
    return found


def test_every_variable_compose_and_the_manifests_set_is_a_real_setting() -> None:
    found = service_variables()
    assert found["compose api"] and found["k8s ConfigMap"]  # the walk found them
    for where, names in found.items():
        assert unknown_settings(names) == set(), where
    # The check itself: a misspelt name is caught.
    assert unknown_settings({"SURROGATE_RELOAD_INTERVAL", "SURROGATE_GRPC_PORT"}) == {
        "SURROGATE_RELOAD_INTERVAL"}


def test_every_setting_reaches_the_api_containers() -> None:
    """docker-compose.yml and the README promise that every SURROGATE_* setting set where
    compose runs reaches the replicas: the api service passes every field of Settings."""
    assert service_variables()["compose api"] == setting_names()


def cfg_variables() -> set[str]:
    return set(re.findall(r"\$\{(\w+)\}", HAPROXY_CFG.read_text())) | set(
        re.findall(r"defined\((\w+)\)", HAPROXY_CFG.read_text()))


def test_the_balancer_variables_compose_sets_are_the_ones_its_config_reads() -> None:
    lb_env = set(compose()["services"]["lb"]["environment"])
    static = {name for name in cfg_variables() if name.startswith("LB_STATIC_")}
    assert len(static) == 6  # the topology test's three replicas, HTTP and gRPC
    assert lb_env == cfg_variables() - static


def test_haproxy_accepts_the_config_as_compose_and_as_the_topology_test_run_it() -> None:
    lb_env = {k: str(v) for k, v in compose()["services"]["lb"]["environment"].items()}
    as_compose = check_config(lb_env)
    assert as_compose.returncode == 0, as_compose.stderr
    as_test = check_config(static_environment(
        "127.0.0.1:18000", ["127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003"],
        "127.0.0.1:18100", ["127.0.0.1:18101", "127.0.0.1:18102", "127.0.0.1:18103"]))
    assert as_test.returncode == 0, as_test.stderr
    without_bind = check_config({k: v for k, v in lb_env.items() if k != "LB_BIND"})
    assert without_bind.returncode != 0  # the check does read the file and its variables


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", value)
    assert match, value
    return float(match[1]) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[match[2]]


def default_of(value: str) -> str:
    """`${VAR:-default}` -> default (compose interpolation)."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", str(value))
    return match[1] if match else str(value)


def test_drain_outlasts_the_balancers_detection_and_grace_periods_outlast_drain_and_grace(
        ) -> None:
    cfg = HAPROXY_CFG.read_text()
    inter = seconds(re.search(r"default-server inter (\S+)", cfg)[1])
    fall = int(re.search(r"default-server .* fall (\d+)", cfg)[1])
    api = compose()["services"]["api"]
    compose_drain = float(default_of(api["environment"]["SURROGATE_SHUTDOWN_DRAIN_S"]))
    compose_grace = float(default_of(api["environment"]["SURROGATE_SHUTDOWN_GRACE_S"]))
    assert inter * fall < compose_drain
    assert compose_drain + compose_grace < seconds(api["stop_grace_period"])
    resources = all_resources()
    config = resources["ConfigMap"]["data"]
    k8s_drain = float(config["SURROGATE_SHUTDOWN_DRAIN_S"])
    k8s_grace = float(config["SURROGATE_SHUTDOWN_GRACE_S"])
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    readiness = pod["containers"][0]["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < k8s_drain
    assert k8s_drain + k8s_grace < pod["terminationGracePeriodSeconds"]


def test_compose_serves_every_replica_through_one_host_port() -> None:
    services = compose()["services"]
    assert "ports" not in services["api"]  # replicas are reached through the balancer only
    assert services["lb"]["ports"] == ["${API_PORT:-8000}:8000", "${GRPC_PORT:-8001}:8001"]
    assert services["lb"]["volumes"] == [
        "./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]


def test_the_image_fills_the_kernel_cache_at_build_time() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    service = dockerfile.split(" AS service", 1)[1].split("\nFROM ", 1)[0]
    assert re.search(r"^ENV NUMBA_CACHE_DIR=/app/\S+", service, re.M)
    assert service.index("RUN surrogate-serve warmup") < service.index("USER 10001")
    assert re.search(r"python -m compileall -q service\b", service)  # bytecode in the image


def test_system_dependencies_install_haproxy() -> None:
    script = (ROOT / "scripts" / "system-deps.sh").read_text()
    assert re.search(r"^packages=\(.*\bhaproxy\b.*\)$", script, re.M)
    done = subprocess.run(["bash", "-n", str(ROOT / "scripts" / "system-deps.sh")])
    assert done.returncode == 0


def budget_table() -> dict[str, float]:
    """docs/performance.md's budget table: row label -> its number."""
    text = (ROOT / "docs" / "performance.md").read_text()
    section = text[text.index("| budget | value |"):]
    rows = {}
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            break
        label, value = (cell.strip() for cell in line.strip("|").split("|"))
        rows[label] = float(value.split()[0])
    return rows


def row(rows: dict[str, float], start: str) -> float:
    (value,) = [v for label, v in rows.items() if label.startswith(start)]
    return value


def test_the_pod_memory_limit_is_derived_from_the_budgets_the_docs_give() -> None:
    rows = budget_table()
    config = all_resources()["ConfigMap"]["data"]
    defaults = Settings(database_url="sqlite://")
    slots = row(rows, "heavy requests at once")
    share = row(rows, "memory per request")
    assert slots == int(config["SURROGATE_MAX_HEAVY_REQUESTS"]) == defaults.max_heavy_requests
    assert share == int(config["SURROGATE_REQUEST_MEMORY_MB"]) == defaults.request_memory_mb
    limit = all_resources()["Deployment"]["spec"]["template"]["spec"]["containers"][0][
        "resources"]["limits"]["memory"]
    assert limit.endswith("Mi")
    assert float(limit[:-2]) == row(rows, "pod memory limit") \
        == row(rows, "replica at rest") + slots * share


def test_the_time_budgets_fit_inside_the_balancers_timeout() -> None:
    rows = budget_table()
    config = all_resources()["ConfigMap"]["data"]
    defaults = Settings(database_url="sqlite://")
    timeout = seconds(re.search(r"timeout server (\S+)", HAPROXY_CFG.read_text())[1])
    assert row(rows, "balancer server timeout") == timeout
    budget = row(rows, "time per request")
    deadline = row(rows, "deadline per request")
    assert budget == float(config["SURROGATE_REQUEST_TIME_BUDGET_S"]) \
        == defaults.request_time_budget_s
    assert deadline == float(config["SURROGATE_REQUEST_DEADLINE_S"]) \
        == defaults.request_deadline_s
    assert 5 * budget <= timeout  # margin for a replica several times slower
    assert budget < deadline < timeout
