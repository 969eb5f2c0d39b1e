"""The L-BFGS MAP fits every method uses: ensemble members, and the starts of ADVI and NUTS.

One compiled value-and-gradient function; scipy does the rest (what pm.find_MAP does,
without recompiling for every restart of an ensemble)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
from scipy.optimize import minimize

from training.config import MapSettings
from training.methods.target import FitTarget, MapFit

LIKELIHOOD_WEIGHTS = "likelihood_weights"


def anchor_name(variable: str) -> str:
    """The shared offset of `variable`'s prior centre from its mean (an anchored member's
    draw; 0 outside `map_starts`)."""
    return f"{variable}_anchor"


# scipy's L-BFGS history (maxcor): the number of past steps its curvature estimate uses.
DEFAULT_LBFGS_HISTORY = 10


def map_fit(func: Any, model: pm.Model, start: dict[str, np.ndarray],
            settings: MapSettings, history: int = DEFAULT_LBFGS_HISTORY) -> MapFit:
    """L-BFGS maximum a posteriori point from `start`, keeping `history` past steps;
    `func` is the model's compiled `logp_dlogp_function(ravel_inputs=True)`."""
    from pymc.blocking import DictToArrayBijection, RaveledVars

    x0 = DictToArrayBijection.map({v.name: start[v.name] for v in model.value_vars})

    def cost(flat: np.ndarray) -> tuple[float, np.ndarray]:
        logp, grad = func(RaveledVars(flat, x0.point_map_info))
        if not np.isfinite(logp):
            return 1e300, np.zeros_like(flat)
        return -float(logp), -np.asarray(grad, dtype=float)

    result = minimize(cost, x0.data, jac=True, method="L-BFGS-B",
                      options={"maxiter": settings.map_max_iterations,
                               "ftol": settings.map_tolerance, "maxcor": history})
    point = DictToArrayBijection.rmap(RaveledVars(result.x, x0.point_map_info))
    return MapFit({k: np.asarray(v) for k, v in point.items()}, -float(result.fun),
                  int(result.nfev), bool(result.success))


# A member whose point explains the training data (every row weighted 1) worse than the
# ensemble's median by more than this many nats per row stopped in a poor local optimum,
# not at a different plausible curve: bootstrap members differ by a few hundredths of a
# nat per row, while a member stuck with a too-wide sigma loses about one.
STRANDED_NATS_PER_ROW = 0.2


def map_starts(bnn: FitTarget, model: pm.Model, count: int) -> list[MapFit]:
    """`count` MAP fits: the model's initial point, then fresh random starts; for the
    bootstrap each under its own likelihood weights; where the model has anchored priors
    (training.model.ANCHORED_PRIORS) each under its own prior centre, started there. A
    member stranded in a poor optimum is fitted once more from a fresh start (same weights
    and anchors), keeping the better of the two."""
    seed = bnn.config.model.seed
    rng = np.random.default_rng(seed + 7919)
    weight_rng = np.random.default_rng(seed + 104729)
    anchor_rng = np.random.default_rng(seed + 15485863)
    bootstrap = bnn.config.method == "bootstrap"
    # Anchors exist only in a MAP ensemble of a model with covariates (training.model).
    anchors = bnn.prior_anchors
    fits, member_weights, member_anchors = [], [], []
    for member in range(count):
        if bootstrap:
            # Exponential(1) weights: n x a flat Dirichlet draw, Rubin's Bayesian
            # bootstrap. The compiled log posterior reads them from the shared variable.
            weights = model[LIKELIHOOD_WEIGHTS]
            member_weights.append(bootstrap_weights(weight_rng, weights.get_value().shape[0],
                                                    bnn.group_index))
            weights.set_value(member_weights[-1])
        start = model.initial_point() if member == 0 else bnn.random_start(rng)
        if anchors:
            # Randomise, then optimise: the member draws an offset from the prior, centres
            # its prior on mean + offset and starts there. Where the data say nothing the
            # members then stay spread as the prior is, instead of all shrinking to the
            # prior mean; where the data speak they pull every member alike. With the
            # bootstrap weights on the data side this is Pearce et al.'s (2018)
            # anchored ensemble. Entries of anchor SD 0 keep their prior and start.
            member_anchors.append({name: sd * anchor_rng.standard_normal(sd.shape)
                                   for name, (_, sd) in anchors.items()})
            _set_anchors(model, member_anchors[-1])
            start = dict(start)
            for name, (mean, sd) in anchors.items():
                start[name] = np.where(sd > 0, mean + member_anchors[-1][name], start[name])
        fits.append(bnn.map_fit(model, start))
    scores = _unweighted_log_posteriors(bnn, model, fits, bootstrap)
    rows = int(np.shape(model["x"].get_value())[0])
    floor = np.median(scores) - STRANDED_NATS_PER_ROW * rows
    for member, score in enumerate(scores):
        if score >= floor:
            continue
        if bootstrap:
            model[LIKELIHOOD_WEIGHTS].set_value(member_weights[member])
        if anchors:
            _set_anchors(model, member_anchors[member])
        retry = bnn.map_fit(model, bnn.random_start(rng))
        if retry.log_posterior > fits[member].log_posterior:
            fits[member] = retry
    if bootstrap:
        model[LIKELIHOOD_WEIGHTS].set_value(np.ones(rows))
    _set_anchors(model, _no_offsets(bnn))
    return fits


def _set_anchors(model: pm.Model, offsets: dict[str, np.ndarray]) -> None:
    """Centre each anchored prior on its mean + offset."""
    for name, value in offsets.items():
        model[anchor_name(name)].set_value(value)


def _no_offsets(bnn: FitTarget) -> dict[str, np.ndarray]:
    """The model's own prior: every anchored prior back on its mean."""
    return {name: np.zeros(sd.shape) for name, (_, sd) in bnn.prior_anchors.items()}


def _unweighted_log_posteriors(bnn: FitTarget, model: pm.Model,
                               fits: list[MapFit], bootstrap: bool) -> list[float]:
    """Each member's log posterior with every row weighted 1 and every prior on its own
    mean: comparable across members (their own weighted or anchored values are not)."""
    if not bootstrap and not bnn.prior_anchors:
        return [fit.log_posterior for fit in fits]
    from pymc.blocking import DictToArrayBijection

    if bootstrap:
        model[LIKELIHOOD_WEIGHTS].set_value(np.ones(np.shape(model["x"].get_value())[0]))
    _set_anchors(model, _no_offsets(bnn))
    func = bnn.logp_dlogp(model)
    return [float(func(DictToArrayBijection.map(
        {v.name: fit.point[v.name] for v in model.value_vars}))[0]) for fit in fits]


def bootstrap_weights(rng: np.random.Generator, rows: int,
                      group_index: np.ndarray | None) -> np.ndarray:
    """One Exponential(1) weight per row, or per group shared by its rows.

    Readings of one material are not independent evidence: a material shifts its whole
    curve, so the mean curve's error is about (material-to-material SD)/sqrt(materials)
    however many strains each was tested at. Weighting rows independently averages
    that shift away and makes the epistemic SD too small; weighting materials keeps it.
    """
    if group_index is None or group_index.size != rows:
        return rng.exponential(1.0, rows)
    return rng.exponential(1.0, int(group_index.max()) + 1)[group_index]
