"""Heteroskedastic Bayesian neural network in PyMC (ModelBuilder style).

One tanh trunk, two linear heads: mu(x) and z(x) = log sigma(x) (through the noise link).
All weights carry Normal priors. The homoskedastic variant (the textbook BNN this project
exists to replace) keeps only a bias in the sigma head, so sigma does not depend on x; it
is kept for comparison and is stored in the same artifact layout (sigma-head weights 0).

Inference methods (`BNNConfig.method`; one module each under `training.methods`,
settings in `training.config`):
- ``bootstrap`` (default): a Bayesian-bootstrap ensemble. Every member is a MAP fit of this
  model whose log-likelihood terms carry random weights w ~ Exponential(1) (the
  weighted likelihood bootstrap of Newton & Raftery 1994, i.e. Rubin's Bayesian bootstrap
  applied to the posterior mode), each from its own random initialisation. The weights
  are drawn per material when the data have groups (all rows of a material share one),
  per row otherwise: materials, not readings, are the independent units. The weights
  make members disagree where the data leave the curve uncertain - by about as much as the
  posterior does inside the data - and the restarts make them disagree where there is no
  data at all. Each member is one stored draw. In a model with covariates each member
  also centres its prior on its own draw from the prior and starts there (anchored
  priors, `ANCHORED_PRIORS`): far from every tested condition, where the data say
  nothing, the members then spread as the prior does instead of agreeing.
- ``advi``: mean-field ADVI started at a MAP point of the posterior, run in
  learning-rate stages until the smoothed loss stops improving (see `LossPlateau`).
- ``fullrank_advi``: the same with a full-rank Gaussian (captures weight correlations;
  slower per step, more parameters).
- ``nuts``: NUTS through nutpie (numba backend), several chains, started at MAP points of
  independent random initialisations.
- ``ensemble``: a deep ensemble (Lakshminarayanan et al. 2017) of MAP fits of
  this very model (priors included, so each member is regularised) from independent
  random initialisations, unweighted; every member is one "draw" of the artifact.

Why the Bayesian bootstrap is the default (measured in docs/calibration.md): mean-field
ADVI cannot represent functions that agree inside the data and differ outside it (its
epistemic SD does not grow beyond the data, x0.7-0.8), and it inflates the scatter where
sigma(x) has a sharp minimum (aleatoric error 7-8%); the plain deep ensemble fixes both but
its members all find the same curve inside the data, so its epistemic SD there is 4-10x
smaller than NUTS's. The bootstrap weights restore that in-data spread.

Everything here works on normalised data; `training.pipeline` handles units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from service.artifact import layer_names
from training.config import (  # noqa: F401  (re-exported: callers import them from here)
    MAP_ENSEMBLES,
    METHODS,
    NOISE_MODELS,
    AdviSettings,
    BNNConfig,
    BootstrapSettings,
    EnsembleSettings,
    MapSettings,
    ModelConfig,
    NutsSettings,
)
from training.methods import advi, ensemble, nuts
from training.methods.advi import LossPlateau, advi_diagnostics  # noqa: F401
from training.methods.map import (
    DEFAULT_LBFGS_HISTORY,
    LIKELIHOOD_WEIGHTS,
    anchor_name,
    map_fit,
)
from training.methods.nuts import nuts_diagnostics  # noqa: F401
from training.methods.target import Fitter, MapFit
from training.origin import Origin

# Every method works on the model through training.methods.target.FitTarget, which
# HeteroskedasticBNN provides.
# Prior SD of the first layer's weights on the (standardised) covariates. The strain's
# weights keep the wide prior (input_weight_prior_sd) that lets units switch sharply near
# zero strain; a covariate's effect is smooth, and with the wide prior the bootstrap members
# bent differently between tested temperatures, so the answer at an untested one was far
# too wide (docs/covariates.md has the measurement).
COVARIATE_WEIGHT_PRIOR_SD = 1.0
MATERIAL_PROPERTY_WEIGHT_PRIOR_SD = 0.1  # on a material property (training.material_properties)
# Anchored priors for a model with covariates: in a MAP ensemble (bootstrap or deep
# ensemble) each member centres the prior of every weight on its own draw from that prior
# and starts there (training.methods.map.map_starts), except the strain's first-layer row,
# which keeps its prior. Members shrunk toward one prior mean agreed far from every tested
# condition, where a posterior spreads as the prior does; docs/covariates.md has the
# measurement. A model without covariates has no anchors: same graph, same fit.
ANCHORED_PRIORS = True

# L-BFGS history of a model with covariates (scipy's maxcor; 10 by default, which a
# strain-only model keeps: same fit for the same seed). With 10, 15 of the 16 members of a
# default covariate fit stopped at the 3000-iteration cap short of their optimum; with 50
# three members reached, in the same time, log posteriors as high as 9000 iterations with
# 10 gave (docs/covariates.md, "The L-BFGS history").
COVARIATE_LBFGS_HISTORY = 50

FITTERS: dict[str, Fitter] = {
    "advi": advi.fit, "fullrank_advi": advi.fit, "nuts": nuts.fit,
    "ensemble": ensemble.fit, "bootstrap": ensemble.fit,
}


@dataclass
class FitResult:
    arrays: dict[str, np.ndarray]
    diagnostics: dict[str, Any]
    wall_time_s: float
    inference_data: Any  # arviz.InferenceData
    # Loss per ADVI step (normalised units), for the report; None for other methods.
    loss_trace: np.ndarray | None = None
    # Chains of the stored draws (draws are chain-major): 1 unless NUTS.
    chains: int = 1


def _pymc_name(artifact_name: str) -> str:
    return artifact_name.replace(".", "_")


class HeteroskedasticBNN:
    def __init__(self, config: BNNConfig | None = None) -> None:
        self.config = config or BNNConfig()
        # name -> (prior mean, initialisation SD, shape) of every weight, for restarts.
        self._init_spec: dict[str, tuple[float, float, tuple[int, ...]]] = {}
        # Row -> group number when the bootstrap weights groups (set by `fit`).
        self.group_index: np.ndarray | None = None
        # pymc name -> (prior mean, SD of each entry's anchor draw) of the weights whose
        # prior a MAP ensemble member centres on its own draw (set by `build_model`; an
        # entry of SD 0 is not anchored).
        self.prior_anchors: dict[str, tuple[float, np.ndarray]] = {}
        self._anchored = False
        self._covariates = False

    def build_model(self, x: np.ndarray, y: np.ndarray, origin: Origin | None = None,
                    properties: tuple[int, ...] = ()) -> pm.Model:
        """The PyMC model on normalised inputs x and outputs y (1-D). x is the strain
        (1-D), or (rows, 1 + k) with the strain first and k covariates after it. `origin`
        holds the mean to zero stress at zero strain across the tested conditions
        (training.origin; a model with covariates only). `properties`: x's material
        properties (training.material_properties), kept smoother."""
        cfg = self.config.model
        rng = np.random.default_rng(cfg.seed)
        self._init_spec = {}
        self.prior_anchors = {}
        # A strain-only model keeps the graph it always had (same log density, same fits
        # for the same seed): no anchors.
        self._covariates = np.ndim(x) == 2 and np.shape(x)[1] > 1
        self._anchored = (ANCHORED_PRIORS and self._covariates
                          and self.config.method in MAP_ENSEMBLES)
        with pm.Model() as model:
            x_data = pm.Data("x", x)
            inputs = x_data[:, None] if np.ndim(x) == 1 else x_data
            fan_in = 1 if np.ndim(x) == 1 else int(np.shape(x)[1])
            layers = []
            for i, width in enumerate(cfg.hidden_sizes):
                # Input layer sees standardised x; deeper layers scale by 1/sqrt(fan_in).
                sd: Any = cfg.input_weight_prior_sd if i == 0 else 1.0 / np.sqrt(fan_in)
                anchor_sd = None
                if i == 0 and fan_in > 1:
                    # Covariates' rows: smooth effects (COVARIATE_WEIGHT_PRIOR_SD).
                    sd = np.full((fan_in, 1), COVARIATE_WEIGHT_PRIOR_SD)
                    sd[0, 0] = cfg.input_weight_prior_sd
                    sd[list(properties), 0] = MATERIAL_PROPERTY_WEIGHT_PRIOR_SD
                    # Every tested condition covers the strain range, so the strain's row
                    # is pinned by the data wherever the model answers; it keeps its
                    # prior and its random start (anchor SD 0).
                    anchor_sd = np.broadcast_to(sd, (fan_in, width)).copy()
                    anchor_sd[0] = 0.0
                weight = self._normal(f"trunk{i}.W", 0.0, sd, (fan_in, width), rng,
                                      anchor_sd=anchor_sd)
                bias = self._normal(f"trunk{i}.b", 0.0, cfg.bias_prior_sd, (width,), rng)
                layers.append((weight, bias))
                fan_in = width
            head_sd = 1.0 / np.sqrt(fan_in)
            w_mean = self._normal("mean_head.W", 0.0, head_sd, (fan_in, 1), rng)
            b_mean = self._normal("mean_head.b", 0.0, cfg.bias_prior_sd, (1,), rng)

            def trunk(inputs: Any) -> Any:
                """The hidden layers (for the data, and for `origin`'s points)."""
                for weight, bias in layers:
                    inputs = self._tanh(inputs @ weight + bias)
                return inputs

            def mean_of(features: Any) -> Any:
                return (features @ w_mean + b_mean)[:, 0]

            hidden = trunk(inputs)
            mu = mean_of(hidden)
            if origin is not None:
                # The unloaded state (training.origin): the mean at zero strain, at
                # conditions spread over the tested ranges, held to zero stress.
                mean_at_origin = mean_of(trunk(pt.as_tensor_variable(origin.inputs)))
                pm.Potential("stress_free_origin", pm.logp(
                    pm.Normal.dist(mu=origin.stress, sigma=origin.sd), mean_at_origin).sum())
            b_sigma = self._normal("sigma_head.b", cfg.log_sigma_prior_mean, 1.0, (1,), rng,
                                   init_sd=0.0)
            if cfg.noise == "heteroskedastic":
                w_sigma = self._normal("sigma_head.W", 0.0, head_sd, (fan_in, 1), rng,
                                       init_sd=0.1 * head_sd)
                z = (hidden @ w_sigma + b_sigma)[:, 0]
            else:
                z = b_sigma[0] * pt.ones_like(mu)
            sigma = pt.exp(z) if cfg.noise_link == "exp" else pt.softplus(z)
            if self.config.method == "bootstrap":
                # The same likelihood with a weight w_i on each row's log density (all 1
                # until a member draws its own). A potential, not an observed variable:
                # one log density per row (an observed y plus a (w_i - 1) correction
                # computes it twice; docs/calibration.md has the cost).
                weights = pm.Data(LIKELIHOOD_WEIGHTS, np.ones(np.size(y)))
                log_density = pm.logp(pm.Normal.dist(mu=mu, sigma=sigma), y)
                pm.Potential("weighted_log_likelihood", (weights * log_density).sum())
            else:
                pm.Normal("y", mu=mu, sigma=sigma, observed=y, shape=x_data.shape[0])
        return model

    def _tanh(self, pre: pt.TensorVariable) -> pt.TensorVariable:
        """The trunk's activation. A model with covariates computes tanh as
        2 sigmoid(2a) - 1 (the same function to 4e-16): PyTensor's C code calls libm's
        scalar tanh, about 3x slower than its sigmoid, and that one op took 70% of every
        log-density gradient, which an ensemble fit evaluates tens of thousands of times
        (docs/covariates.md, "Cost"). A strain-only model keeps the graph it always
        had, so it fits the same weights for the same seed as before."""
        if self._covariates:
            return 2.0 * pt.sigmoid(2.0 * pre) - 1.0
        return pt.tanh(pre)

    def _normal(self, name: str, mean: float, sd: float | np.ndarray, shape: tuple[int, ...],
                rng: np.random.Generator, init_sd: float | None = None,
                anchor_sd: np.ndarray | None = None) -> pt.TensorVariable:
        # A random start breaks the permutation symmetry of the hidden units; the default
        # all-zero start is a saddle point where every unit gets the same gradient.
        init_sd = sd if init_sd is None else init_sd
        self._init_spec[_pymc_name(name)] = (mean, init_sd, shape)
        start = mean + init_sd * rng.standard_normal(shape)
        mu: Any = mean
        if self._anchored:
            # The prior's centre is mean + a shared offset: 0 (the model's own prior)
            # except while a MAP ensemble member is fitted under its own draw
            # (ANCHORED_PRIORS; training.methods.map.map_starts).
            anchor_sd = np.broadcast_to(sd if anchor_sd is None else anchor_sd, shape).copy()
            self.prior_anchors[_pymc_name(name)] = (mean, anchor_sd)
            mu = mean + pm.Data(anchor_name(_pymc_name(name)), np.zeros(shape))
        return pm.Normal(_pymc_name(name), mu=mu, sigma=sd, shape=shape, initval=start)

    def random_start(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A fresh random initialisation (same scheme as the model's initvals)."""
        return {name: mean + sd * rng.standard_normal(shape)
                for name, (mean, sd, shape) in self._init_spec.items()}

    # ---------------------------------------------------------------- inference
    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
            origin: Origin | None = None, properties: tuple[int, ...] = ()) -> FitResult:
        """Fit on normalised x (1-D strain, or (rows, 1 + k) with covariates), y. `groups`
        (one label per row, e.g. the material) makes the groups, not the rows, the units the
        bootstrap reweights; `origin` and `properties` as in `build_model`."""
        model = self.build_model(x, y, origin, properties)
        self.group_index = (None if groups is None
                            else np.unique(np.asarray(groups), return_inverse=True)[1])
        started, cpu_started = time.perf_counter(), time.process_time()
        idata, diagnostics, loss_trace, chains = FITTERS[self.config.method](self, model)
        wall = time.perf_counter() - started
        arrays = self._posterior_arrays(idata, fan_in=self.config.model.hidden_sizes[-1])
        diagnostics["wall_time_s"] = round(wall, 3)
        # The fit's own CPU time: its wall time includes sharing a core with held-out fits
        # (training.work_sharing).
        diagnostics["cpu_time_s"] = round(time.process_time() - cpu_started, 3)
        return FitResult(arrays, diagnostics, wall, idata, loss_trace, chains)

    def map_fit(self, model: pm.Model, start: dict[str, np.ndarray]) -> MapFit:
        """L-BFGS maximum a posteriori point from `start` (see `training.methods.map`)."""
        history = COVARIATE_LBFGS_HISTORY if self._covariates else DEFAULT_LBFGS_HISTORY
        return map_fit(self.logp_dlogp(model), model, start, self.config.map, history)

    def logp_dlogp(self, model: pm.Model) -> Any:
        # Compiled once per model: an ensemble's restarts reuse it.
        cache = getattr(self, "_logp_cache", None)
        if cache is None or cache[0] is not model:
            func = model.logp_dlogp_function(ravel_inputs=True)
            func.set_extra_values({})
            self._logp_cache = (model, func)
        return self._logp_cache[1]

    def _posterior_arrays(self, idata: Any, fan_in: int) -> dict[str, np.ndarray]:
        """Artifact arrays (draws first, chain-major) from the posterior group."""
        posterior = idata.posterior
        draws = self.config.stored_draws
        arrays: dict[str, np.ndarray] = {}
        for layer in layer_names(len(self.config.model.hidden_sizes)):
            for part in ("W", "b"):
                name = f"{layer}.{part}"
                if _pymc_name(name) in posterior:
                    values = posterior[_pymc_name(name)].values
                    arrays[name] = values.reshape((-1, *values.shape[2:]))[:draws]
        if "sigma_head.W" not in arrays:  # homoskedastic: sigma does not depend on x
            arrays["sigma_head.W"] = np.zeros((draws, fan_in, 1))
        return arrays
