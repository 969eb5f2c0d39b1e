"""Heteroskedastic Bayesian neural network in PyMC (ModelBuilder style).

One tanh trunk, two linear heads: mu(x) and z(x) = log sigma(x) (through the noise link).
All weights carry Normal priors. The homoskedastic variant (the textbook BNN this project
exists to replace) keeps only a bias in the sigma head, so sigma does not depend on x; it
is kept for comparison and is stored in the same artifact layout (sigma-head weights 0).

Everything here works on normalised data; `training.pipeline` handles units.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from service.artifact import layer_names

NOISE_MODELS = ("heteroskedastic", "homoskedastic")


@dataclass(frozen=True)
class BNNConfig:
    """Defaults for a fit; `with_overrides` merges user choices over them."""

    hidden_sizes: tuple[int, ...] = (16,)
    noise: str = "heteroskedastic"
    noise_link: str = "exp"
    input_weight_prior_sd: float = 1.5
    bias_prior_sd: float = 1.0
    # Prior centre of log sigma in normalised units: noise a third of the data's SD.
    log_sigma_prior_mean: float = -1.0
    method: str = "advi"
    max_steps: int = 30_000
    learning_rate: float = 0.01
    convergence_tolerance: float = 1e-3
    draws: int = 1000
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **overrides: Any) -> BNNConfig:
        unknown = set(overrides) - set(asdict(self))
        if unknown:
            raise ValueError(f"unknown BNN config keys: {sorted(unknown)}")
        config = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        if config.noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {NOISE_MODELS}, got {config.noise!r}")
        if config.method != "advi":
            raise ValueError(f"inference method {config.method!r} is not available yet")
        return config

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data


@dataclass
class FitResult:
    arrays: dict[str, np.ndarray]
    diagnostics: dict[str, Any]
    wall_time_s: float
    inference_data: Any  # arviz.InferenceData


def _pymc_name(artifact_name: str) -> str:
    return artifact_name.replace(".", "_")


class HeteroskedasticBNN:
    def __init__(self, config: BNNConfig | None = None) -> None:
        self.config = config or BNNConfig()

    def build_model(self, x: np.ndarray, y: np.ndarray) -> pm.Model:
        """The PyMC model on normalised inputs x and outputs y (1-D arrays)."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
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
            pm.Normal("y", mu=mu, sigma=sigma, observed=y, shape=x_data.shape[0])
        return model

    @staticmethod
    def _normal(name: str, mean: float, sd: float, shape: tuple[int, ...],
                rng: np.random.Generator, init_sd: float | None = None) -> pt.TensorVariable:
        # A random start breaks the permutation symmetry of the hidden units; the default
        # all-zero start is a saddle point where every unit gets the same gradient.
        start = mean + (sd if init_sd is None else init_sd) * rng.standard_normal(shape)
        return pm.Normal(_pymc_name(name), mu=mean, sigma=sd, shape=shape, initval=start)

    def fit(self, x: np.ndarray, y: np.ndarray) -> FitResult:
        cfg = self.config
        model = self.build_model(x, y)
        started = time.perf_counter()
        with model:
            convergence = pm.callbacks.CheckParametersConvergence(
                every=500, diff="relative", tolerance=cfg.convergence_tolerance)
            approx = pm.fit(
                n=cfg.max_steps, method="advi", random_seed=cfg.seed, progressbar=False,
                obj_optimizer=pm.adam(learning_rate=cfg.learning_rate),
                callbacks=[convergence],
            )
            idata = approx.sample(cfg.draws, random_seed=cfg.seed)
        wall = time.perf_counter() - started
        arrays = self._posterior_arrays(idata, fan_in=cfg.hidden_sizes[-1])
        return FitResult(arrays, self._advi_diagnostics(np.asarray(approx.hist)), wall, idata)

    def _posterior_arrays(self, idata: Any, fan_in: int) -> dict[str, np.ndarray]:
        """Artifact arrays (draws first) from the posterior group of the InferenceData."""
        posterior = idata.posterior
        draws = self.config.draws
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

    def _advi_diagnostics(self, losses: np.ndarray) -> dict[str, Any]:
        steps = int(losses.size)
        tail = losses[-max(1, steps // 10):]
        return {
            "method": "advi",
            "steps": steps,
            "converged": steps < self.config.max_steps,
            "final_loss_mean": float(np.mean(tail)),
            "final_loss_sd": float(np.std(tail)),
            "initial_loss": float(losses[0]) if steps else None,
        }
