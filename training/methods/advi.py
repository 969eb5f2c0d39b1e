"""Mean-field (`advi`) and full-rank (`fullrank_advi`) ADVI, started at a MAP point and run
in learning-rate stages until the smoothed loss stops improving (`LossPlateau`).

Why the MAP start: from a random start, mean-field ADVI spends most of its steps finding
the mean curve and, with stochastic gradients and the KL term pulling every weight to the
prior, settles on an over-smooth fit that misses the steep compression end (measured in
docs/calibration.md). A deterministic L-BFGS MAP fit finds the curve in about a second;
ADVI then only has to learn the spread around it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pymc as pm

from training.methods.target import FitTarget


class LossPlateau:
    """pm.fit callback: stop when the smoothed loss no longer improves.

    Every `window` steps it compares the mean loss of the last window with the window
    before. The fit has converged when the improvement is smaller than both
    `tolerance` x (the loss's own scale) and two standard errors of the difference of the
    window means - i.e. what is left is gradient noise, not progress. A fixed step count
    either wastes time on easy data or stops early on hard data; this does neither.
    """

    def __init__(self, window: int, tolerance: float) -> None:
        self.window = window
        self.tolerance = tolerance
        self.converged_at: int | None = None
        self.diverged_at: int | None = None

    def __call__(self, _approx: Any, losses: np.ndarray, i: int) -> None:
        w = self.window
        if i % w or len(losses) < 2 * w:
            return
        current, previous = losses[-w:], losses[-2 * w:-w]
        improvement = previous.mean() - current.mean()
        noise = 2.0 * np.sqrt((current.var() + previous.var()) / w)
        threshold = max(noise, self.tolerance * max(1.0, abs(current.mean())))
        if not np.isfinite(improvement) or improvement < -threshold:
            # Getting worse beyond noise: the step size is too large for this posterior.
            self.diverged_at = i
            raise StopIteration(f"loss rising at step {i}")
        if improvement < threshold:
            self.converged_at = i
            raise StopIteration(f"loss plateau at step {i}")


def fit(bnn: FitTarget, model: pm.Model
        ) -> tuple[Any, dict[str, Any], np.ndarray, int]:
    method, seed, advi = bnn.config.method, bnn.config.model.seed, bnn.config.advi
    map_started = time.perf_counter()
    start, map_logp, map_evals, _ = bnn.map_fit(model, model.initial_point())
    map_time = time.perf_counter() - map_started
    with model:
        if method == "advi":
            sd = {name: np.full(np.size(value), advi.initial_posterior_sd)
                  for name, value in start.items()}
            inference: pm.KLqp = pm.ADVI(start=start, start_sigma=sd, random_seed=seed)
        else:
            inference = pm.FullRankADVI(start=start, random_seed=seed)
            _shrink_fullrank(inference, advi.initial_posterior_sd)
        stages = []
        remaining = advi.max_steps
        converged = True
        # Full rank has d(d+1)/2 Cholesky entries moving at once: with the mean-field
        # step size they blew the loss up to 1e12 on the demo data; a tenth is stable.
        base = advi.learning_rate * (0.1 if method == "fullrank_advi" else 1.0)
        for lr in (base, *(base * d for d in advi.learning_rate_decay)):
            if remaining <= 0:
                converged = False
                break
            plateau = LossPlateau(advi.convergence_window, advi.convergence_tolerance)
            before = len(inference.hist)
            inference.fit(n=remaining, obj_optimizer=pm.adam(learning_rate=lr),
                          callbacks=[plateau], progressbar=False)
            steps = len(inference.hist) - before
            remaining -= steps
            stages.append({"learning_rate": lr, "steps": steps,
                           "converged": plateau.converged_at is not None,
                           "diverged": plateau.diverged_at is not None})
            converged = converged and plateau.converged_at is not None
        idata = inference.approx.sample(advi.draws, random_seed=seed)
    losses = np.asarray(inference.hist, dtype=float)
    diagnostics = advi_diagnostics(losses, converged, stages, method)
    diagnostics["map"] = {"log_posterior": round(map_logp, 3), "evaluations": map_evals,
                          "wall_time_s": round(map_time, 3)}
    return idata, diagnostics, losses, 1


def _shrink_fullrank(inference: Any, sd: float) -> None:
    # FullRank starts from an identity Cholesky factor (SD 1.3 after its softplus
    # diagonal): far too wide around a MAP start. Set the diagonal to `sd` instead.
    group = inference.approx.groups[0]
    shared = group.params_dict["L_tril"]
    rows, cols = np.tril_indices(group.ddim)
    packed = np.where(rows == cols, np.log(np.expm1(sd)), 0.0)
    shared.set_value(packed.astype(shared.get_value().dtype))


def advi_diagnostics(losses: np.ndarray, converged: bool, stages: list[dict[str, Any]],
                     method: str) -> dict[str, Any]:
    """Summary of the ADVI loss (negative ELBO, normalised units) for the manifest."""
    steps = int(losses.size)
    tail = losses[-max(1, min(steps, 1000)):]
    # A coarse trace (at most 100 window means) so the manifest can redraw the curve.
    chunks = np.array_split(losses, min(100, max(1, steps)))
    return {
        "method": method,
        "steps": steps,
        "converged": bool(converged),
        "stages": stages,
        "initial_loss": float(losses[0]) if steps else None,
        "final_loss_mean": float(np.mean(tail)) if steps else None,
        "final_loss_sd": float(np.std(tail)) if steps else None,
        "loss_trace_coarse": [round(float(np.mean(c)), 3) for c in chunks if c.size],
    }
