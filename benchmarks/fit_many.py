"""`surrogate-train fit-many` against fitting the same groups one after another.

    python benchmarks/fit_many.py [--groups 6] [--materials 12] [--points 25] [--members 4]
                                  [--workers 2]

In a temporary folder: `make-data` groups (the three laws in turn) and one broken CSV,
then, with the load average before and after each step:
1. the groups fitted one after another with `surrogate-train fit` (registry seq.db);
2. `fit-many` over a plan of the same groups plus the broken entry (registry many.db),
   its slots seeded from the warm PyTensor cache the sequential fits used, so both start
   warm; the wall-time ratio, and each registered version with its fingerprint and
   held-out metrics, read back from the registry;
3. the same `fit-many` again: every group skipped;
4. as a pod of the Indexed Job runs it: `fit-many --index`-less with JOB_COMPLETION_INDEX
   set, registering through a live `surrogate-serve`'s admin API (a fresh registry),
   then again (skipped, read through the API).
Small but real fits (the default bootstrap method with few members, one held-out split
unless --folds); timings on a shared machine are noisy, so compare the ratio of one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The script's folder holds benchmarks/http.py, which would shadow the standard library's
# http package: look up modules from the project root instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx  # noqa: E402
import yaml  # noqa: E402

from service.errors import NotFoundError  # noqa: E402
from service.registry.db import make_engine, make_session_factory, upgrade_to_head  # noqa: E402
from service.registry.reads import model_detail, version_detail  # noqa: E402
from tests.service_process import ServerProcess, free_port, service_command  # noqa: E402
from training.data import LAWS  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN = "fit-many-benchmark-token"


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None,
        show: bool = False) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - started
    output = done.stdout + done.stderr
    if show:
        print(output.rstrip())
    print(f"  exit {done.returncode}, {elapsed:.1f} s ({load()})")
    return elapsed, output


def warm_compiledir() -> Path:
    """The PyTensor compiledir that plain `surrogate-train fit` uses here."""
    printed = subprocess.run([sys.executable, "-c", "import training, pytensor; "
                              "print(pytensor.config.compiledir)"],
                             capture_output=True, text=True, check=True)
    return Path(printed.stdout.strip())


def registered(database_url: str, names: list[str]) -> None:
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        for name in names:
            try:
                newest = model_detail(session, name)["versions"][-1]["version"]
            except NotFoundError:
                print(f"  {name}: not registered")
                continue
            detail = version_detail(session, name, newest)
            held = detail["metrics"].get("held_out", {})
            print(f"  {name} v{newest}: fit_data_sha256 {detail['tags']['fit_data_sha256'][:12]}"
                  f"..., fit_options_sha256 {detail['tags']['fit_options_sha256'][:12]}..., "
                  f"held-out NLPD {held.get('nlpd', float('nan')):.3f}, 95% coverage "
                  f"{held.get('coverage', {}).get('0.95', float('nan')):.3f}, "
                  f"{len(detail['files'])} figures")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=6)
    parser.add_argument("--materials", type=int, default=12)
    parser.add_argument("--points", type=int, default=25)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folds", type=int, default=1,
                        help="held-out fits per group (fit's default is 5; 1 keeps it short)")
    args = parser.parse_args()
    laws = list(LAWS)
    with tempfile.TemporaryDirectory(prefix="fit-many-bench-") as folder:
        work = Path(folder)
        names = [f"{laws[i % len(laws)]}-{i}" for i in range(args.groups)]
        for i, name in enumerate(names):
            subprocess.run([BIN / "surrogate-train", "make-data", "--out", f"{name}.csv",
                            "--law", laws[i % len(laws)], "--materials", str(args.materials),
                            "--points", str(args.points), "--seed", str(i)],
                           cwd=work, check=True, capture_output=True)
        (work / "broken.csv").write_text("strain,stress,material\n0.1,n/a,0\n0.2,1,0\n"
                                         "0.3,2,0\n0.4,3,0\n")
        plan = work / "plan.yaml"
        plan.write_text(yaml.safe_dump({
            "defaults": {"members": args.members, "folds": args.folds, "alias": "production"},
            "groups": [*({"name": name, "csv": f"{name}.csv"} for name in names),
                       {"name": "broken", "csv": "broken.csv"}]}))
        databases = {key: f"sqlite:///{work / key}.db" for key in ("seq", "many", "server")}
        for url in databases.values():
            upgrade_to_head(url)
        print(f"{args.groups} groups of {args.materials} materials x {args.points} strains, "
              f"bootstrap with {args.members} members, {args.folds} held-out fold(s), "
              f"{os.cpu_count()} cores; {load()}")

        print("\n1. one after another: surrogate-train fit, per group")
        sequential = 0.0
        for name in names:
            elapsed, _ = run([str(BIN / "surrogate-train"), "fit", f"{name}.csv", "--name",
                              name, "--members", str(args.members), "--folds", str(args.folds),
                              "--alias", "production",
                              "--database-url", databases["seq"]], work)
            sequential += elapsed

        print(f"\n2. surrogate-train fit-many plan.yaml --workers {args.workers} "
              "(the same groups and a broken entry)")
        many = [str(BIN / "surrogate-train"), "fit-many", "plan.yaml", "--database-url",
                databases["many"], "--workers", str(args.workers), "--compile-dir", "slots",
                "--compile-seed", str(warm_compiledir())]
        parallel, _ = run(many, work, show=True)
        print(f"  one after another {sequential:.1f} s, fit-many {parallel:.1f} s: "
              f"{sequential / parallel:.2f}x")
        print("  registered (read back from the registry):")
        registered(databases["many"], names)

        print("\n3. the same fit-many again")
        run(many, work, show=True)

        print("\n4. as a pod runs it: JOB_COMPLETION_INDEX=1, through a live server's admin "
              "API")
        port = free_port()
        server = ServerProcess.launch(service_command(port), port, {
            "SURROGATE_DATABASE_URL": databases["server"], "SURROGATE_ADMIN_TOKEN": TOKEN,
            "SURROGATE_ACCESS_LOG": "false"}, work / "server.log")
        try:
            server.wait_until_ok()
            pod = [str(BIN / "surrogate-train"), "fit-many", "plan.yaml", "--register-url",
                   server.url, "--compile-dir", "slots"]
            env = {"JOB_COMPLETION_INDEX": "1", "SURROGATE_ADMIN_TOKEN": TOKEN}
            run(pod, work, env, show=True)
            detail = httpx.get(f"{server.url}/v1/models/{names[1]}/versions/1").json()
            print(f"  GET /v1/models/{names[1]}/versions/1: registered_by "
                  f"{detail['registered_by']!r}, tags {detail['tags']}, held-out NLPD "
                  f"{detail['metrics']['held_out']['nlpd']:.3f}, inference data "
                  f"{detail['has_inference_data']}, {len(detail['files'])} figures")
            others = [httpx.get(f"{server.url}/v1/models/{name}").status_code
                      for name in names if name != names[1]]
            print(f"  the other groups on that server: HTTP {sorted(set(others))}")
            print("  again:")
            run(pod, work, env, show=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
