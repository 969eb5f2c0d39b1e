"""The training Indexed Job (deploy/k8s/train-indexed-job.yaml) is what docs/training.md
says it is: one pod per entry of its example plan, the plan from its ConfigMap, the token
from the API's Secret, registration through the Service, a compile directory of each pod's
own on an emptyDir seeded from the train image, and the API Deployment's securityContext.
(kubernetes-validate --strict checks it with the other manifests in
tests/test_deployment_config.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli_helpers import runner
from tests.test_deployment_config import K8S, ROOT, all_resources, documents, setting_names
from training.cli import cli, fit
from training.plan import load_plan

JOB = K8S / "train-indexed-job.yaml"
EXAMPLE_PLAN = K8S / "train" / "plan.example.yaml"
DOCS = ROOT / "docs" / "training.md"


def job() -> dict[str, Any]:
    (document,) = documents(JOB)
    return document


def pod() -> dict[str, Any]:
    return job()["spec"]["template"]["spec"]


def container() -> dict[str, Any]:
    (train,) = pod()["containers"]
    return train


def option(name: str) -> str:
    command = container()["command"]
    return command[command.index(name) + 1]


def mounts() -> dict[str, dict[str, Any]]:
    """mountPath -> the volume mounted there."""
    volumes = {volume["name"]: volume for volume in pod()["volumes"]}
    return {mount["mountPath"]: volumes[mount["name"]] for mount in container()["volumeMounts"]}


def test_one_pod_per_entry_of_the_example_plan() -> None:
    spec = job()["spec"]
    assert spec["completionMode"] == "Indexed"
    counted = runner.invoke(cli, ["plan", "count", str(EXAMPLE_PLAN)])
    assert counted.exit_code == 0, counted.output
    assert spec["completions"] == int(counted.output) == 3
    assert all(not entry.problems for entry in load_plan(EXAMPLE_PLAN, fit).entries)
    assert spec["backoffLimitPerIndex"] == 2 and "backoffLimit" not in spec
    assert pod()["restartPolicy"] == "Never"  # backoffLimitPerIndex requires it
    (fail_index,) = [rule for rule in spec["podFailurePolicy"]["rules"]
                     if rule["action"] == "FailIndex"]
    assert fail_index["onExitCodes"]["values"] == [2]  # fit-many: plan or registry unusable


def test_the_pod_reads_its_plan_and_registers_through_the_service() -> None:
    command = container()["command"]
    assert command[:2] == ["surrogate-train", "fit-many"] and "--index" not in command
    plan = Path(command[2])
    volume = mounts()[str(plan.parent)]
    assert volume["configMap"]["name"] == "material-surrogate-train-plan"
    service = all_resources()["Service"]
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    assert option("--register-url") == f"http://{service['metadata']['name']}:{port}"
    (token,) = container()["env"][:1]
    assert token["name"] == "SURROGATE_ADMIN_TOKEN"
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": all_resources()["Secret"]["metadata"]["name"], "key": "SURROGATE_ADMIN_TOKEN"}
    assert {e["name"] for e in container()["env"] if e["name"].startswith("SURROGATE_")} \
        <= setting_names()
    assert container()["image"].endswith(":train")
    resources = container()["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_each_pod_compiles_in_its_own_empty_dir_seeded_from_the_image() -> None:
    compile_dir = option("--compile-dir")
    assert "emptyDir" in mounts()[compile_dir]
    seed = option("--compile-seed")
    dockerfile = (ROOT / "Dockerfile").read_text()
    train_stage = dockerfile[dockerfile.index("AS train"):]
    assert f"compiledir={seed} " in train_stage  # the image's warm-up fit fills it
    docs = DOCS.read_text()
    for said in (f"`{compile_dir}` on an `emptyDir`", f"`{seed}`", "completionMode:\nIndexed",
                 "material-surrogate-train-plan", "`backoffLimitPerIndex: 2`"):
        assert said in docs, said


def test_pods_run_with_the_api_deployments_security_context() -> None:
    deployment = all_resources()["Deployment"]["spec"]["template"]["spec"]
    (api,) = deployment["containers"]
    assert pod()["securityContext"] == deployment["securityContext"]
    assert container()["securityContext"] == api["securityContext"]
    assert pod()["automountServiceAccountToken"] is False
    # a read-only root: every path the fit writes is an emptyDir
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    for path in ("/tmp", "/app/var", option("--compile-dir")):
        assert "emptyDir" in mounts()[path], path
    assert "same\nsecurityContext as the API Deployment" in DOCS.read_text()
