"""Our endpoint vs PyMC's per-request posterior predictive, on the same posterior.

    .venv/bin/python benchmarks/vs_pymc.py [--repeats 20] [--wrk-seconds 3]

One posterior (a 1->16 network, 1,000 draws, random weights) answers both ways:
- ours: POST /v1/models/<name>/predict to the service on loopback (`surrogate-serve`,
  temporary SQLite registry, access logs on), over one keep-alive connection, with three
  clients: the standard library's http.client (lean; the response decoded by orjson),
  httpx (a convenient client whose own overhead is a large part of a one-strain request),
  and wrk -c1 (C, its p50: the server's latency without Python client overhead, about what
  a simulation code's libcurl handle kept open sees);
- PyMC: what most PyMC users write per request: the model from
  training.model.HeteroskedasticBNN.build_model, an ArviZ InferenceData holding the same
  draws, then `pm.set_data` + `pm.sample_posterior_predictive`, summarised (mean and SD of
  the predictive samples, back in physical units).
Median latency (and best) for 1 and 1,000 strains, and the ratio for each client. For one
strain it also prints the latency the 1,000x target needs and two floors measured with
wrk -c1 in the same run (benchmarks/_floor.py): uvicorn serving a do-nothing app, and a bare
uvloop socket server; each also with the in-process prediction added (a lower bound for a
predict served that way). Needs `wrk`. Nothing asserts.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

# benchmarks/http.py would shadow the standard library's `http` package: the project root
# goes first on the path instead (before http.client is imported).
sys.path[0] = str(Path(__file__).resolve().parents[1])

import http.client  # noqa: E402

import training  # noqa: E402,F401  (PyTensor BLAS flags before PyMC loads)

# isort: split
from urllib.parse import urlsplit  # noqa: E402

import arviz as az  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402
import pymc as pm  # noqa: E402

from benchmarks._floor import floors  # noqa: E402
from benchmarks._server import serve  # noqa: E402
from benchmarks._wrk import post_script, wrk  # noqa: E402
from service.artifact import Artifact, layer_names  # noqa: E402
from service.inference.posterior import Posterior  # noqa: E402
from tests.service_process import random_artifact  # noqa: E402
from training.model import BNNConfig, HeteroskedasticBNN  # noqa: E402

SIZES = (1, 1_000)
TARGET_RATIO = 1000.0


def pymc_predictor(artifact: Artifact):
    """A function strain -> (mean, sd) doing PyMC's per-request posterior predictive."""
    norm = artifact.spec.normalisation
    # The model with an observed y (the bootstrap's weighted likelihood is a Potential,
    # which posterior-predictive sampling ignores): the network and its draws are the same.
    config = BNNConfig().with_overrides(method="advi",
                                        hidden_sizes=tuple(artifact.hidden_sizes),
                                        draws=artifact.draws,
                                        noise_link=artifact.spec.architecture.noise_link)
    x0 = np.zeros(2)
    model = HeteroskedasticBNN(config).build_model(x0, np.zeros(2))
    posterior = {}
    for layer in layer_names(len(artifact.hidden_sizes)):
        for part in ("W", "b"):
            name = f"{layer}.{part}"
            posterior[name.replace(".", "_")] = artifact.arrays[name][None, ...]  # 1 chain
    idata = az.from_dict(posterior=posterior)
    logging.getLogger("pymc").setLevel(logging.ERROR)

    def predict(strain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (strain - norm.x_mean) / norm.x_scale
        with model:
            pm.set_data({"x": x})
            draws = pm.sample_posterior_predictive(
                idata, var_names=["y"], progressbar=False, random_seed=0)
        y = norm.y_mean + norm.y_scale * draws.posterior_predictive["y"].values
        y = y.reshape(-1, strain.size)
        return y.mean(axis=0), y.std(axis=0)

    return predict


def timings(call, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


class LeanClient:
    """One keep-alive connection; the pre-encoded body sent as is, the response read by its
    Content-Length: about what a simulation code gets from a libcurl handle kept open."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.path = parts.path

    def post(self, body: bytes) -> bytes:
        try:
            self.connection.request("POST", self.path, body,
                                    {"content-type": "application/json"})
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closes idle keep-alive connections (uvicorn: after 5 s, e.g.
            # while PyMC runs); reconnect once, as libcurl does.
            self.connection.close()
            self.connection.request("POST", self.path, body,
                                    {"content-type": "application/json"})
            response = self.connection.getresponse()
        content = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {content[:300]!r}")
        return content


def print_row(n: int, client: str, ours_median: float, ours_best: float | None,
              pymc_median: float, pymc_best: float) -> None:
    """One table row (seconds in, milliseconds out); for one strain, the target's verdict."""
    ratio = pymc_median / ours_median
    best = f"{ours_best * 1e3:>13.3f}" if ours_best is not None else f"{'-':>13}"
    print(f"{n:>8} {client:>12} {ours_median * 1e3:>15.3f} {best} "
          f"{pymc_median * 1e3:>15.1f} {pymc_best * 1e3:>13.1f} {ratio:>15.0f}x")
    if n == 1:
        print(f"  target >= {TARGET_RATIO:.0f}x faster end to end for one strain "
              f"({client}): {'met' if ratio >= TARGET_RATIO else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--wrk-seconds", type=float, default=3.0,
                        help="length of each wrk -c1 run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk; scripts/system-deps.sh)")
    print(f"cores: {os.cpu_count()}, load average: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (other processes skew timings)")
    artifact = random_artifact(draws=1000, hidden_sizes=(16,), seed=0)
    pymc_predict = pymc_predictor(artifact)
    posterior = Posterior(artifact)
    rng = np.random.default_rng(0)
    with (serve(artifact, quiet=False) as server, floors() as floor_urls,
          httpx.Client(timeout=60) as client):
        lean = LeanClient(server.predict_url)
        print(f"posterior: hidden {artifact.hidden_sizes}, {artifact.draws} draws; service "
              f"pid {server.running.process.pid} (access logs on, as deployed)")
        print(f"{'strains':>8} {'client':>12} {'ours median ms':>15} {'ours best ms':>13} "
              f"{'PyMC median ms':>15} {'PyMC best ms':>13} {'ratio (medians)':>16}")
        for n in SIZES:
            strain = rng.uniform(-0.5, 0.5, n)
            body = orjson.dumps({"strain": strain}, option=orjson.OPT_SERIALIZE_NUMPY)

            def with_httpx(body=body):
                response = client.post(server.predict_url, content=body,
                                       headers={"content-type": "application/json"})
                response.raise_for_status()
                return orjson.loads(response.content)

            clients = {"http.client": lambda body=body: orjson.loads(lean.post(body)),
                       "httpx": with_httpx}
            for call in clients.values():
                for _ in range(5):  # warm both paths (PyMC compiles its function per call)
                    call()
            pymc_predict(strain)
            pymc_median, pymc_best = timings(lambda s=strain: pymc_predict(s),
                                             max(3, args.repeats // 2))

            for label, call in clients.items():
                print_row(n, label, *timings(call, args.repeats * 10),
                          pymc_median, pymc_best)
            # wrk, a C client: the server's own latency, without Python client overhead.
            run = wrk(server.predict_url, 1, args.wrk_seconds, post_script(body))
            if run["errors"]:
                sys.exit(f"wrk: {run['errors']} failed predicts")
            print_row(n, "wrk -c1", run["p50"] / 1e3, None, pymc_median, pymc_best)
            # The same summaries in process (no HTTP): the kernel's share of our latency.
            kernel_median, _ = timings(lambda s=strain: posterior.predict(s), args.repeats * 10)
            print(f"  in-process Posterior.predict: {kernel_median * 1e3:.3f} ms median, "
                  f"{pymc_median / kernel_median:.0f}x faster than PyMC")
            if n == 1:
                # What no app on this stack, or no Python server at all, can beat here.
                print(f"  one-strain latency {TARGET_RATIO:.0f}x faster than PyMC needs: "
                      f"{pymc_median / TARGET_RATIO * 1e3:.3f} ms. Floors, same client "
                      f"(wrk -c1), servers that do no work (benchmarks/_floor.py):")
                for label, url in floor_urls.items():
                    floor = wrk(url, 1, args.wrk_seconds, post_script(body))["p50"] / 1e3
                    bound = floor + kernel_median
                    print(f"    {label:<24} p50 {floor * 1e3:.3f} ms: at most "
                          f"{pymc_median / floor:.0f}x PyMC; plus the prediction itself "
                          f"{bound * 1e3:.3f} ms: at most {pymc_median / bound:.0f}x")
            # Same posterior: the predictive means agree up to Monte-Carlo noise.
            ours_mean = np.array(clients["http.client"]()["mean"])
            pymc_mean, pymc_sd = pymc_predict(strain)
            z = np.max(np.abs(ours_mean - pymc_mean) / (pymc_sd / np.sqrt(artifact.draws)))
            print(f"  sanity: max |our mean - PyMC sample mean| = {z:.1f} Monte-Carlo SEs")


if __name__ == "__main__":
    main()
