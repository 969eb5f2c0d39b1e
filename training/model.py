"""Heteroskedastic Bayesian neural network in PyMC (ModelBuilder style).

One tanh trunk, two linear heads: mu(x) and z(x) = log sigma(x) (through the noise link).
All weights carry Normal priors. The homoskedastic variant (the textbook BNN this project
exists to replace) keeps only a bias in the sigma head, so sigma does not depend on x; it
is kept for comparison and is stored in the same artifact layout (sigma-head weights 0).

Inference methods (`BNNConfig.method`):
- ``bootstrap`` (default): a Bayesian-bootstrap ensemble. Every member is a MAP fit of this
  model whose log-likelihood terms carry random weights w ~ Exponential(1) (the
  weighted likelihood bootstrap of Newton & Raftery 1994, i.e. Rubin's Bayesian bootstrap
  applied to the posterior mode), each from its own random initialisation. The weights
  are drawn per material when the data have groups (all rows of a material share one),
  per row otherwise: materials, not readings, are the independent units. The weights
  make members disagree where the data leave the curve uncertain - by about as much as the
  posterior does inside the data - and the restarts make them disagree where there is no
  data at all. Each member is one stored draw.
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

Why the MAP start: from a random start, mean-field ADVI spends most of its steps finding
the mean curve and, with stochastic gradients and the KL term pulling every weight to the
prior, settles on an over-smooth fit that misses the steep compression end (measured in
docs/calibration.md). A deterministic L-BFGS MAP fit finds the curve in about a second;
ADVI then only has to learn the spread around it.

Everything here works on normalised data; `training.pipeline` handles units.

Why one module of this size: the inference methods share the model's graph, its
priors and the MAP machinery they start from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.optimize import minimize

from service.artifact import layer_names

NOISE_MODELS = ("heteroskedastic", "homoskedastic")
METHODS = ("bootstrap", "advi", "fullrank_advi", "nuts", "ensemble")
# Methods whose draws are MAP fits (one per member) rather than posterior samples.
MAP_ENSEMBLES = ("bootstrap", "ensemble")
LIKELIHOOD_WEIGHTS = "likelihood_weights"


@dataclass(frozen=True)
class BNNConfig:
    """Defaults for a fit; `with_overrides` merges user choices over them.

    The defaults were chosen by measurement (docs/calibration.md has the tables):
    one hidden layer of 16 tanh units fits every hyperelastic group tried and the
    motorcycle data; two layers gained nothing under ADVI. The exp noise link keeps the
    log-sigma head linear, which the priors below are written for.
    """

    hidden_sizes: tuple[int, ...] = (16,)
    noise: str = "heteroskedastic"
    noise_link: str = "exp"
    input_weight_prior_sd: float = 4.0
    # Wide enough that hidden units can switch anywhere across the standardised domain
    # and beyond it. mcycle NLPD (4 folds) of an 8-member bootstrap: 0.401/0.398/0.396
    # (seeds 0/1/2) with SD 3, 0.383/0.386 with SD 5 - but SD 5 raised the Mooney-Rivlin
    # aleatoric error to 5.3% (4.9% with SD 3); the MAP ensemble scored 0.485 with SD 1.
    bias_prior_sd: float = 3.0
    # Prior centre of log sigma in normalised units: noise a third of the data's SD.
    log_sigma_prior_mean: float = -1.0
    # The Bayesian-bootstrap ensemble: the only fast method that met every target of the
    # calibration benchmark (module docstring; docs/calibration.md has the tables).
    method: str = "bootstrap"
    # ADVI: at most this many steps in all; the fit stops earlier when the loss plateaus.
    max_steps: int = 30_000
    learning_rate: float = 0.01
    # Learning rates after the first plateau, each run to its own plateau.
    learning_rate_decay: tuple[float, ...] = (0.1,)
    # Plateau test: compare the mean loss of consecutive windows of this many steps.
    convergence_window: int = 500
    convergence_tolerance: float = 1e-3
    # Starting SD of every variational factor (small: start at the MAP point).
    initial_posterior_sd: float = 0.01
    draws: int = 1000
    # NUTS (nutpie)
    tune: int = 500
    chains: int = 2
    target_accept: float = 0.9
    # Ensembles (bootstrap and plain) / MAP: members = stored draws. 16 bootstrap members:
    # aleatoric error 4.6%/4.9% and mcycle NLPD 0.396/0.388 (seeds 0/1) in ~25 s on the
    # demo group; 8 members were cheaper but noisier (5.3-5.4% and up to 0.401).
    ensemble_members: int = 16
    map_max_iterations: int = 3000
    # L-BFGS stops when one iteration improves the log posterior by less than this
    # fraction of it (scipy's ftol). Its default 2.2e-9 ran every member into the
    # iteration cap (3000, ~4 s each) for < 1 nat per 1000 iterations; 1e-6 stopped after
    # ~500 iterations 10-20 nats short (aleatoric error 5.3% vs 4.9%); 1e-7 scores as the
    # cap did (5.0%, mcycle 0.395) in half the time.
    map_tolerance: float = 1e-7
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **overrides: Any) -> BNNConfig:
        unknown = set(overrides) - set(asdict(self))
        if unknown:
            raise ValueError(f"unknown BNN config keys: {sorted(unknown)}")
        config = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        if config.noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {NOISE_MODELS}, got {config.noise!r}")
        if config.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {config.method!r}")
        if config.noise_link not in ("exp", "softplus"):
            raise ValueError(f"noise_link must be exp or softplus, got {config.noise_link!r}")
        return config

    @property
    def stored_draws(self) -> int:
        """Draws in the artifact: members for an ensemble, else `draws`."""
        return self.ensemble_members if self.method in MAP_ENSEMBLES else self.draws

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        data["learning_rate_decay"] = list(self.learning_rate_decay)
        return data


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


class MapFit(NamedTuple):
    point: dict[str, np.ndarray]
    log_posterior: float
    evaluations: int
    converged: bool  # L-BFGS met its tolerance (False: it hit map_max_iterations)


class HeteroskedasticBNN:
    def __init__(self, config: BNNConfig | None = None) -> None:
        self.config = config or BNNConfig()
        # name -> (prior mean, initialisation SD, shape) of every weight, for restarts.
        self._init_spec: dict[str, tuple[float, float, tuple[int, ...]]] = {}
        # Row -> group number when the bootstrap weights groups (set by `fit`).
        self._group_index: np.ndarray | None = None

    def build_model(self, x: np.ndarray, y: np.ndarray) -> pm.Model:
        """The PyMC model on normalised inputs x and outputs y (1-D arrays)."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        self._init_spec = {}
        with pm.Model() as model:
            x_data = pm.Data("x", x)
            hidden = x_data[:, None]
            fan_in = 1
            for i, width in enumerate(cfg.hidden_sizes):
                # Input layer sees standardised x; deeper layers scale by 1/sqrt(fan_in).
                sd = cfg.input_weight_prior_sd if i == 0 else 1.0 / np.sqrt(fan_in)
                weight = self._normal(f"trunk{i}.W", 0.0, sd, (fan_in, width), rng)
                bias = self._normal(f"trunk{i}.b", 0.0, cfg.bias_prior_sd, (width,), rng)
                hidden = pt.tanh(hidden @ weight + bias)
                fan_in = width
            head_sd = 1.0 / np.sqrt(fan_in)
            w_mean = self._normal("mean_head.W", 0.0, head_sd, (fan_in, 1), rng)
            b_mean = self._normal("mean_head.b", 0.0, cfg.bias_prior_sd, (1,), rng)
            mu = (hidden @ w_mean + b_mean)[:, 0]
            b_sigma = self._normal("sigma_head.b", cfg.log_sigma_prior_mean, 1.0, (1,), rng,
                                   init_sd=0.0)
            if cfg.noise == "heteroskedastic":
                w_sigma = self._normal("sigma_head.W", 0.0, head_sd, (fan_in, 1), rng,
                                       init_sd=0.1 * head_sd)
                z = (hidden @ w_sigma + b_sigma)[:, 0]
            else:
                z = b_sigma[0] * pt.ones_like(mu)
            sigma = pt.exp(z) if cfg.noise_link == "exp" else pt.softplus(z)
            if cfg.method == "bootstrap":
                # The same likelihood with a weight w_i on each row's log density (all 1
                # until a member draws its own). A potential, not an observed variable:
                # one log density per row (an observed y plus a (w_i - 1) correction
                # computed it twice and made each MAP evaluation 1.6x slower).
                weights = pm.Data(LIKELIHOOD_WEIGHTS, np.ones(np.size(y)))
                log_density = pm.logp(pm.Normal.dist(mu=mu, sigma=sigma), y)
                pm.Potential("weighted_log_likelihood", (weights * log_density).sum())
            else:
                pm.Normal("y", mu=mu, sigma=sigma, observed=y, shape=x_data.shape[0])
        return model

    def _normal(self, name: str, mean: float, sd: float, shape: tuple[int, ...],
                rng: np.random.Generator, init_sd: float | None = None) -> pt.TensorVariable:
        # A random start breaks the permutation symmetry of the hidden units; the default
        # all-zero start is a saddle point where every unit gets the same gradient.
        init_sd = sd if init_sd is None else init_sd
        self._init_spec[_pymc_name(name)] = (mean, init_sd, shape)
        start = mean + init_sd * rng.standard_normal(shape)
        return pm.Normal(_pymc_name(name), mu=mean, sigma=sd, shape=shape, initval=start)

    def random_start(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A fresh random initialisation (same scheme as the model's initvals)."""
        return {name: mean + sd * rng.standard_normal(shape)
                for name, (mean, sd, shape) in self._init_spec.items()}

    # ---------------------------------------------------------------- inference
    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None
            ) -> FitResult:
        """Fit on normalised x, y. `groups` (one label per row, e.g. the material) makes
        the groups, not the rows, the units the bootstrap reweights."""
        cfg = self.config
        model = self.build_model(x, y)
        self._group_index = (None if groups is None
                             else np.unique(np.asarray(groups), return_inverse=True)[1])
        started = time.perf_counter()
        fitter: dict[str, Callable[[pm.Model], tuple[Any, dict[str, Any], Any, int]]] = {
            "advi": self._fit_advi, "fullrank_advi": self._fit_advi,
            "nuts": self._fit_nuts, "ensemble": self._fit_ensemble,
            "bootstrap": self._fit_ensemble,
        }
        idata, diagnostics, loss_trace, chains = fitter[cfg.method](model)
        wall = time.perf_counter() - started
        arrays = self._posterior_arrays(idata, fan_in=cfg.hidden_sizes[-1])
        diagnostics["wall_time_s"] = round(wall, 3)
        return FitResult(arrays, diagnostics, wall, idata, loss_trace, chains)

    def map_fit(self, model: pm.Model, start: dict[str, np.ndarray]) -> MapFit:
        """L-BFGS maximum a posteriori point from `start`.

        One compiled value-and-gradient function; scipy does the rest (what pm.find_MAP
        does, without recompiling for every restart of an ensemble)."""
        from pymc.blocking import DictToArrayBijection, RaveledVars

        func = self._logp_dlogp(model)
        x0 = DictToArrayBijection.map({v.name: start[v.name] for v in model.value_vars})

        def cost(flat: np.ndarray) -> tuple[float, np.ndarray]:
            logp, grad = func(RaveledVars(flat, x0.point_map_info))
            if not np.isfinite(logp):
                return 1e300, np.zeros_like(flat)
            return -float(logp), -np.asarray(grad, dtype=float)

        result = minimize(cost, x0.data, jac=True, method="L-BFGS-B",
                          options={"maxiter": self.config.map_max_iterations,
                                   "ftol": self.config.map_tolerance})
        point = DictToArrayBijection.rmap(RaveledVars(result.x, x0.point_map_info))
        return MapFit({k: np.asarray(v) for k, v in point.items()}, -float(result.fun),
                      int(result.nfev), bool(result.success))

    def _logp_dlogp(self, model: pm.Model) -> Any:
        cache = getattr(self, "_logp_cache", None)
        if cache is None or cache[0] is not model:
            func = model.logp_dlogp_function(ravel_inputs=True)
            func.set_extra_values({})
            self._logp_cache = (model, func)
        return self._logp_cache[1]

    def _fit_advi(self, model: pm.Model) -> tuple[Any, dict[str, Any], np.ndarray, int]:
        cfg = self.config
        map_started = time.perf_counter()
        start, map_logp, map_evals, _ = self.map_fit(model, model.initial_point())
        map_time = time.perf_counter() - map_started
        with model:
            if cfg.method == "advi":
                sd = {name: np.full(np.size(value), cfg.initial_posterior_sd)
                      for name, value in start.items()}
                inference: pm.KLqp = pm.ADVI(start=start, start_sigma=sd,
                                             random_seed=cfg.seed)
            else:
                inference = pm.FullRankADVI(start=start, random_seed=cfg.seed)
                self._shrink_fullrank(inference, cfg.initial_posterior_sd)
            stages = []
            remaining = cfg.max_steps
            converged = True
            # Full rank has d(d+1)/2 Cholesky entries moving at once: with the mean-field
            # step size they blew the loss up to 1e12 on the demo data; a tenth is stable.
            base = cfg.learning_rate * (0.1 if cfg.method == "fullrank_advi" else 1.0)
            for lr in (base, *(base * d for d in cfg.learning_rate_decay)):
                if remaining <= 0:
                    converged = False
                    break
                plateau = LossPlateau(cfg.convergence_window, cfg.convergence_tolerance)
                before = len(inference.hist)
                inference.fit(n=remaining, obj_optimizer=pm.adam(learning_rate=lr),
                              callbacks=[plateau], progressbar=False)
                steps = len(inference.hist) - before
                remaining -= steps
                stages.append({"learning_rate": lr, "steps": steps,
                               "converged": plateau.converged_at is not None,
                               "diverged": plateau.diverged_at is not None})
                converged = converged and plateau.converged_at is not None
            idata = inference.approx.sample(cfg.draws, random_seed=cfg.seed)
        losses = np.asarray(inference.hist, dtype=float)
        diagnostics = advi_diagnostics(losses, converged, stages, cfg.method)
        diagnostics["map"] = {"log_posterior": round(map_logp, 3), "evaluations": map_evals,
                              "wall_time_s": round(map_time, 3)}
        return idata, diagnostics, losses, 1

    @staticmethod
    def _shrink_fullrank(inference: Any, sd: float) -> None:
        # FullRank starts from an identity Cholesky factor (SD 1.3 after its softplus
        # diagonal): far too wide around a MAP start. Set the diagonal to `sd` instead.
        group = inference.approx.groups[0]
        shared = group.params_dict["L_tril"]
        size = group.ddim
        rows, cols = np.tril_indices(size)
        packed = np.where(rows == cols, np.log(np.expm1(sd)), 0.0)
        shared.set_value(packed.astype(shared.get_value().dtype))

    def _map_starts(self, model: pm.Model, count: int) -> list[MapFit]:
        rng = np.random.default_rng(self.config.seed + 7919)
        weight_rng = np.random.default_rng(self.config.seed + 104729)
        fits = []
        for member in range(count):
            if self.config.method == "bootstrap":
                # Exponential(1) weights: n x a flat Dirichlet draw, Rubin's Bayesian
                # bootstrap. The compiled log posterior reads them from the shared variable.
                weights = model[LIKELIHOOD_WEIGHTS]
                weights.set_value(self._bootstrap_weights(weight_rng,
                                                          weights.get_value().shape[0]))
            start = model.initial_point() if member == 0 else self.random_start(rng)
            fits.append(self.map_fit(model, start))
        return fits

    def _bootstrap_weights(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """One Exponential(1) weight per row, or per group shared by its rows.

        Readings of one material are not independent evidence: a material shifts its whole
        curve, so the mean curve's error is about (material-to-material SD)/sqrt(materials)
        however many strains each was tested at. Weighting rows independently averages
        that shift away and makes the epistemic SD too small; weighting materials keeps it.
        """
        index = self._group_index
        if index is None or index.size != rows:
            return rng.exponential(1.0, rows)
        return rng.exponential(1.0, int(index.max()) + 1)[index]

    def _fit_ensemble(self, model: pm.Model) -> tuple[Any, dict[str, Any], None, int]:
        import arviz as az

        cfg = self.config
        fits = self._map_starts(model, cfg.ensemble_members)
        posterior = {name: np.stack([fit.point[name] for fit in fits])[None]
                     for name in fits[0].point}
        idata = az.from_dict(posterior=posterior)
        logps = [fit.log_posterior for fit in fits]
        at_cap = sum(not fit.converged for fit in fits)
        diagnostics = {
            "method": cfg.method, "members": cfg.ensemble_members,
            "map_evaluations": sum(fit.evaluations for fit in fits),
            # For the bootstrap, each under the member's own likelihood weights.
            "member_log_posterior": [round(v, 3) for v in logps],
            "members_at_iteration_cap": at_cap,
            "converged": at_cap == 0,
        }
        if cfg.method == "ensemble":
            # Members that ended in a much worse optimum than the best one show up here
            # (bootstrap members' log posteriors differ by their weights, not comparable).
            diagnostics["log_posterior_range"] = round(max(logps) - min(logps), 3)
        return idata, diagnostics, None, 1

    def _fit_nuts(self, model: pm.Model) -> tuple[Any, dict[str, Any], None, int]:
        import nutpie

        cfg = self.config
        # Chains start at MAP points of different random initialisations: warm-up then
        # only adapts the mass matrix instead of crossing the whole weight space, and
        # chains in different modes are exposed by the function-space R-hat.
        start = self._map_starts(model, 1)[0].point
        compiled = nutpie.compile_pymc_model(model, initial_points=start)
        per_chain = -(-cfg.draws // cfg.chains)
        idata = nutpie.sample(compiled, draws=per_chain, tune=cfg.tune, chains=cfg.chains,
                              cores=cfg.chains, seed=cfg.seed, progress_bar=False,
                              target_accept=cfg.target_accept,
                              low_rank_modified_mass_matrix=True)
        diagnostics = nuts_diagnostics(idata)
        diagnostics.update(chains=cfg.chains, tune=cfg.tune, draws_per_chain=per_chain,
                           target_accept=cfg.target_accept)
        return idata, diagnostics, None, cfg.chains

    def _posterior_arrays(self, idata: Any, fan_in: int) -> dict[str, np.ndarray]:
        """Artifact arrays (draws first, chain-major) from the posterior group."""
        posterior = idata.posterior
        draws = self.config.stored_draws
        arrays: dict[str, np.ndarray] = {}
        for layer in layer_names(len(self.config.hidden_sizes)):
            for part in ("W", "b"):
                name = f"{layer}.{part}"
                if _pymc_name(name) in posterior:
                    values = posterior[_pymc_name(name)].values
                    arrays[name] = values.reshape((-1, *values.shape[2:]))[:draws]
        if "sigma_head.W" not in arrays:  # homoskedastic: sigma does not depend on x
            arrays["sigma_head.W"] = np.zeros((draws, fan_in, 1))
        return arrays


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


def nuts_diagnostics(idata: Any) -> dict[str, Any]:
    """Weight-space R-hat / ESS / divergences (ArviZ). Weight R-hat is inflated by the
    permutation symmetry of hidden units; the function-space diagnostics the pipeline adds
    are the ones to judge convergence by."""
    import arviz as az

    summary = az.summary(idata, kind="diagnostics")
    stats = idata.sample_stats
    divergences = int(stats["diverging"].values.sum()) if "diverging" in stats else None
    return {
        "method": "nuts",
        "divergences": divergences,
        "weight_r_hat_max": float(summary["r_hat"].max()),
        "weight_ess_bulk_min": float(summary["ess_bulk"].min()),
        "weight_ess_tail_min": float(summary["ess_tail"].min()),
        "converged": bool(divergences == 0),
    }
