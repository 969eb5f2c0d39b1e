"""`surrogate-train fit-many` with tiny real fits: registration with fingerprints, skipping
and forcing, a failed entry among good ones, one entry by index (as a pod of an Indexed
Job runs it), and registration through a live service's admin API."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from service.errors import NotFoundError
from service.registry.db import make_engine, make_session_factory, upgrade_to_head
from service.registry.reads import model_detail, version_detail
from tests.cli_helpers import make_group_csv, runner
from tests.file_server import serve_folder
from tests.service_process import ServerProcess, free_port, service_command
from training.cli import cli, fit
from training.compile_dirs import claim_slot, flags_with_compile_dir
from training.fit_group import GroupJob, RegistryTarget
from training.fit_many import DATA_TAG, OPTIONS_TAG, fingerprint, prepare
from training.plan import load_plan

# A fit of seconds, as tests/cli_helpers.TINY, one fit per group (no held-out split).
TINY = {"method": "advi", "steps": 300, "draws": 20, "hidden": 4, "holdout": 0}


@pytest.fixture(scope="module")
def compile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One root of compile slots for the module's runs: later runs reuse warm slots."""
    return tmp_path_factory.mktemp("pytensor")


@pytest.fixture(scope="module")
def compile_seed() -> list[str]:
    """Seed new slots from this test process's own PyTensor cache, which the suite's other
    fits warm (and which no other process writes while this module's tests run in it):
    a cold slot compiles for minutes on a busy machine. Speed only: a cold seed works."""
    import pytensor

    seed = Path(pytensor.config.compiledir)
    return ["--compile-seed", str(seed)] if seed.is_dir() else []


@pytest.fixture(autouse=True)
def _reports_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports go to ./var/reports by default: keep them out of the repo."""
    monkeypatch.chdir(tmp_path)


def write_plan(folder: Path, groups: list[dict[str, Any]], **defaults: Any) -> Path:
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump({"defaults": {**TINY, **defaults}, "groups": groups}))
    return path


def fit_many(plan: Path, *options: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, ["fit-many", str(plan), *options], env=env)
    return result.exit_code, result.output


def versions(database_url: str, name: str) -> list[dict[str, Any]]:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return [version_detail(session, name, v["version"])
                    for v in model_detail(session, name)["versions"]]
    finally:
        engine.dispose()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_fit_many_registers_skips_refits_and_survives_failed_entries(
    tmp_path: Path, database_url: str, compile_root: Path, compile_seed: list[str]
) -> None:
    for name, seed in (("a", 1), ("b", 2)):
        make_group_csv(tmp_path / f"{name}.csv", materials=4, points=8, seed=seed)
    (tmp_path / "broken.csv").write_text("strain,stress\n0.1,abc\n0.2,1\n0.3,2\n0.4,3\n")
    plan = write_plan(tmp_path, [
        {"name": "rubber-a", "csv": "a.csv", "holdout": 0.25, "folds": 1},  # 1 material out
        {"name": "rubber-b", "csv": "b.csv"},
        {"name": "broken", "csv": "broken.csv"},  # bad data: refused before it is fitted
        {"name": "late", "csv": "a.csv", "report": "plan.yaml"},  # fails after its fit
    ], alias="production")
    run = ["--database-url", database_url, "--workers", "2", "--compile-dir", str(compile_root),
           *compile_seed]

    code, output = fit_many(plan, *run)
    assert code == 1, output  # a group failed, the others registered
    assert "entry 2 (broken): failed: 1 rows of" in output and "non-numeric" in output
    assert "entry 3 (late): failed: FileExistsError" in output
    for name, csv in (("rubber-a", "a.csv"), ("rubber-b", "b.csv")):
        (first,) = versions(database_url, name)
        assert first["tags"][DATA_TAG] == sha256(tmp_path / csv) == first["data_sha256"]
        assert len(first["tags"][OPTIONS_TAG]) == 64
        assert first["metrics"]["training"]["nlpd"] is not None
        assert first["lineage"]["config"]["hidden_sizes"] == [4]
        assert f"entry {'ab'.index(csv[0])} ({name}): registered version 1" in output
    held_out = versions(database_url, "rubber-a")[0]["metrics"]["held_out"]
    assert f"{held_out['nlpd']:.3f}" in output  # the summary shows the held-out scores
    for failed in ("broken", "late"):
        with pytest.raises(NotFoundError):
            versions(database_url, failed)
    # two groups ran at once, each process's PyTensor in a compile directory of its own
    used = re.findall(r"fitting \(PyTensor cache (.*)\)", output)
    assert len(used) == 3 and set(used) == {
        str(compile_root / slot / "compiledir") for slot in ("slot-0", "slot-1")}, output

    code, output = fit_many(plan, *run)
    assert code == 1, output
    assert "entry 0 (rubber-a): skipped: data and options unchanged since version 1" in output
    assert "entry 1 (rubber-b): skipped" in output
    # as a pod runs it: the index from the environment, that entry alone
    code, output = fit_many(plan, *run, env={"JOB_COMPLETION_INDEX": "1"})
    assert code == 0, output
    assert "entry 1 (rubber-b): skipped" in output and "entry 0" not in output

    # new data, or a new option value, make a group due again; so does force
    target = RegistryTarget(database_url=database_url)
    work = tmp_path / "work"
    work.mkdir()
    make_group_csv(tmp_path / "b.csv", materials=4, points=8, seed=5)
    changed = write_plan(tmp_path / "work", [{"name": "rubber-a", "csv": "../a.csv",
                                              "seed": 1}])
    entries = load_plan(plan, fit).entries
    assert isinstance(prepare(entries[1], target, False, work), GroupJob)  # data
    assert isinstance(prepare(load_plan(changed, fit).entries[0], target, False, work),
                      GroupJob)  # options
    assert isinstance(prepare(entries[0], target, True, work), GroupJob)  # forced
    assert prepare(entries[0], target, False, work).status == "skipped"

    # Forced, the group is fitted again with unchanged data (rubber-b: one fit, where
    # rubber-a's held-out fold would be a second one).
    make_group_csv(tmp_path / "b.csv", materials=4, points=8, seed=2)  # b.csv as it was
    code, output = fit_many(plan, *run, "--index", "1", "--force")
    assert code == 0, output
    assert "entry 1 (rubber-b): registered version 2" in output and "entry 0" not in output
    first, second = versions(database_url, "rubber-b")
    assert first["tags"] == second["tags"]  # same data, same options

    code, output = fit_many(plan, *run, "--index", "7")
    assert code == 2 and "there is no entry 7" in output


@pytest.mark.slow
def test_an_indexed_pod_registers_through_the_admin_api(
    tmp_path: Path, compile_root: Path, compile_seed: list[str]
) -> None:
    """JOB_COMPLETION_INDEX selects the entry, data comes from a URL, the version goes
    through the admin API with its fingerprint, metrics, figures and netCDF; the next run
    reads the service's versions and skips it."""
    data = tmp_path / "data"
    data.mkdir()
    make_group_csv(data / "b.csv", materials=4, points=8, seed=3)
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade_to_head(registry)
    port, token = free_port(), "fit-many-test-token"
    server = ServerProcess.launch(service_command(port), port, {
        "SURROGATE_DATABASE_URL": registry, "SURROGATE_ADMIN_TOKEN": token,
        "SURROGATE_ACCESS_LOG": "false"}, tmp_path / "server.log")
    try:
        server.wait_until_ok()
        with serve_folder(data) as files:
            plan = write_plan(tmp_path, [{"name": "rubber-a", "csv": f"{files}/a.csv"},
                                         {"name": "rubber-b", "csv": f"{files}/b.csv"}])
            run = ["--register-url", server.url, "--token", token,
                   "--compile-dir", str(compile_root), *compile_seed]
            pod = {"JOB_COMPLETION_INDEX": "1"}
            code, output = fit_many(plan, *run, env=pod)
            assert code == 0, output + server.log.read_text()[-2000:]
            assert "entry 1 (rubber-b): registered version 1" in output
            assert token not in output
            detail = httpx.get(f"{server.url}/v1/models/rubber-b/versions/1").json()
            assert detail["tags"][DATA_TAG] == sha256(data / "b.csv")
            assert detail["metrics"]["training"]["coverage"]["0.95"] is not None
            assert detail["has_inference_data"]
            assert "report/fit.png" in {f["path"] for f in detail["files"]}
            assert httpx.get(f"{server.url}/v1/models/rubber-a").status_code == 404

            code, output = fit_many(plan, *run, env=pod)
            assert code == 0, output
            assert "entry 1 (rubber-b): skipped: data and options unchanged since " \
                   "version 1" in output
    finally:
        server.stop()


def test_covariates_reach_the_groups_data_and_its_fingerprint(tmp_path: Path) -> None:
    """A plan's `covariate` option reads those columns as `fit --covariate` does (the job
    carries them to the worker's fit) and is part of the options' fingerprint."""
    made = runner.invoke(cli, ["make-data", "--out", str(tmp_path / "c.csv"), "--covariates",
                               "--materials", "3", "--points", "5"])
    assert made.exit_code == 0, made.output
    plan = write_plan(tmp_path, [
        {"name": "with", "csv": "c.csv", "covariate": ["temperature:K", "rate:1/s"]},
        {"name": "without", "csv": "c.csv"}])
    work = tmp_path / "work"
    work.mkdir()
    target = RegistryTarget(database_url="unused: forced jobs read no registry")
    jobs = [prepare(entry, target, True, work) for entry in load_plan(plan, fit).entries]
    assert isinstance(jobs[0], GroupJob) and isinstance(jobs[1], GroupJob)
    assert [(c.name, c.unit) for c in jobs[0].data.covariate_columns] == [
        ("temperature", "K"), ("rate", "1/s")]
    assert jobs[0].data.covariates.shape == (75, 2)
    assert jobs[1].data.covariates is None
    options, sha = jobs[0].options, jobs[0].data.sha256
    assert fingerprint(options, sha) == jobs[0].tags
    assert fingerprint({**options, "covariate": ["temperature:K"]}, sha)[OPTIONS_TAG] \
        != jobs[0].tags[OPTIONS_TAG]


def test_compile_slots_are_exclusive_reused_and_seeded(tmp_path: Path) -> None:
    seed = tmp_path / "seed"  # a warm compiledir
    (seed / "tmpabc").mkdir(parents=True)
    (seed / "tmpabc" / "mod.so").write_bytes(b"warm")
    (seed / "lock_dir").mkdir()
    root = tmp_path / "slots"
    with claim_slot(root, seed) as first, claim_slot(root) as second:
        assert (first.name, second.name) == ("slot-0", "slot-1")
        assert (first / "compiledir" / "tmpabc" / "mod.so").read_bytes() == b"warm"
        assert not (first / "compiledir" / "lock_dir").exists()  # a stale lock stalls
        assert not (second / "compiledir").exists()  # not seeded: no seed given
        (first / "compiledir" / "tmpabc" / "mod.so").write_bytes(b"used")
    with claim_slot(root, seed) as again:
        assert again.name == "slot-0"  # free again, and not re-seeded over its own cache
        assert (again / "compiledir" / "tmpabc" / "mod.so").read_bytes() == b"used"
    assert flags_with_compile_dir("blas__ldflags=-lopenblas,compiledir=/old", root) == (
        f"blas__ldflags=-lopenblas,base_compiledir={root},compiledir={root}/compiledir")
