"""The other whole-curve candidate: a BNN with a per-material latent input.

Each material m gets a latent z_m ~ Normal(0, 1) that enters the network beside the
strain: mu(x, z), sigma(x, z). A material is then one value of z, so its curve is coherent
by construction, and the scatter splits into the spread over z (between materials) and
sigma (within). Inference is the default's: a Bayesian bootstrap of MAP fits (weights and
every z_m jointly, one Exponential(1) weight per material). A new material draws z from
its prior; given measured points, z's posterior is computed on a grid.

New materials draw z from a kernel density estimate of the fitted z_m (see
`LatentPosterior.z_fitted`). A benchmark candidate (benchmarks/quality.py), not served:
the artifact and the service know one input. docs/curves.md compares it with the
copula, the default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.special import logsumexp

from training.model import LIKELIHOOD_WEIGHTS, BNNConfig, HeteroskedasticBNN, _pymc_name
from training.origin import Origin

# z grid for integrals over a material's latent (prior N(0, 1)): +-5 SD, fine enough for
# the narrow posterior that a few precise points give.
Z_GRID = np.linspace(-5.0, 5.0, 401)


class LatentBNN(HeteroskedasticBNN):
    """The heteroskedastic BNN with one latent input per material."""

    def __init__(self, config: BNNConfig, groups: np.ndarray) -> None:
        super().__init__(config)
        self.groups = np.unique(groups, return_inverse=True)[1]

    def build_model(self, x: np.ndarray, y: np.ndarray, origin: Origin | None = None,
                    properties: tuple[int, ...] = ()) -> pm.Model:
        # Strain only: no covariates, so neither an unloaded-state term nor properties.
        assert origin is None and not properties
        cfg = self.config.model
        rng = np.random.default_rng(cfg.seed)
        self._init_spec = {}
        materials = int(self.groups.max()) + 1
        with pm.Model() as model:
            x_data = pm.Data("x", x)
            latent = self._normal("latent", 0.0, 1.0, (materials,), rng)
            hidden = pt.stack([x_data, latent[self.groups]], axis=1)
            fan_in = 2
            for i, width in enumerate(cfg.hidden_sizes):
                sd = cfg.input_weight_prior_sd if i == 0 else 1.0 / np.sqrt(fan_in)
                weight = self._normal(f"trunk{i}.W", 0.0, sd, (fan_in, width), rng)
                bias = self._normal(f"trunk{i}.b", 0.0, cfg.bias_prior_sd, (width,), rng)
                hidden = pt.tanh(hidden @ weight + bias)
                fan_in = width
            head_sd = 1.0 / np.sqrt(fan_in)
            mu = (hidden @ self._normal("mean_head.W", 0.0, head_sd, (fan_in, 1), rng)
                  + self._normal("mean_head.b", 0.0, cfg.bias_prior_sd, (1,), rng))[:, 0]
            w_sigma = self._normal("sigma_head.W", 0.0, head_sd, (fan_in, 1), rng,
                                   init_sd=0.1 * head_sd)
            b_sigma = self._normal("sigma_head.b", cfg.log_sigma_prior_mean, 1.0, (1,), rng,
                                   init_sd=0.0)
            sigma = pt.exp((hidden @ w_sigma + b_sigma)[:, 0])
            weights = pm.Data(LIKELIHOOD_WEIGHTS, np.ones(np.size(y)))
            log_density = pm.logp(pm.Normal.dist(mu=mu, sigma=sigma), y)
            pm.Potential("weighted_log_likelihood", (weights * log_density).sum())
        return model


@dataclass
class LatentPosterior:
    """Members' weights and the normalisation, in physical units out."""

    layers: list[tuple[np.ndarray, np.ndarray]]  # per layer (S, fan_in, width), (S, width)
    # Per draw, the fitted z_m of the training materials (S, M). A MAP fit pins neither
    # z's scale nor its shape (the network is free to use z non-linearly, and fitted z's
    # cluster), so a new material's z follows a kernel density estimate of the fitted
    # ones, not the N(0, 1) prior; z is handled in units u = (z - mean_s) / sd_s.
    z_fitted: np.ndarray
    x_mean: float
    x_scale: float
    y_mean: float
    y_scale: float

    @property
    def draws(self) -> int:
        return self.layers[0][0].shape[0]

    @property
    def z_mean(self) -> np.ndarray:
        return self.z_fitted.mean(axis=1)

    @property
    def z_sd(self) -> np.ndarray:
        return self.z_fitted.std(axis=1) + 1e-9

    @property
    def bandwidth(self) -> np.ndarray:
        """Silverman's rule per draw, in units of z."""
        return 1.06 * self.z_sd * self.z_fitted.shape[1] ** -0.2

    def log_prior(self, u: np.ndarray) -> np.ndarray:
        """log KDE density of a new material's z at u (S, len(u)), up to a constant."""
        z = self.z_mean[:, None] + self.z_sd[:, None] * u[None, :]
        h = self.bandwidth[:, None, None]
        t = (z[:, :, None] - self.z_fitted[:, None, :]) / h
        return logsumexp(-0.5 * t * t, axis=2)

    def outputs(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mu and sigma of every draw at every (z, x): shape (S, len(z), len(x)); z in
        units of the training materials' spread."""
        xn = (np.asarray(x, float) - self.x_mean) / self.x_scale
        z = np.asarray(z, float)
        latent = self.z_mean[:, None] + self.z_sd[:, None] * z[None, :]  # (S, Q)
        shape = (self.draws, z.size, xn.size)
        grid = np.stack([np.broadcast_to(xn[None, None, :], shape),
                         np.broadcast_to(latent[:, :, None], shape)], axis=-1)
        hidden = grid.reshape(self.draws, -1, 2)
        *trunk, (w_mu, b_mu), (w_sigma, b_sigma) = self.layers
        for weight, bias in trunk:
            hidden = np.tanh(hidden @ weight + bias[:, None, :])
        mu = (hidden @ w_mu)[..., 0] + b_mu
        sigma = np.exp((hidden @ w_sigma)[..., 0] + b_sigma)
        return (self.y_mean + self.y_scale * mu).reshape(shape), \
            (self.y_scale * sigma).reshape(shape)

    def samples(self, x: np.ndarray, count: int, seed: int) -> np.ndarray:
        """Whole curves of new materials, (count, len(x))."""
        rng = np.random.default_rng(seed)
        chosen = rng.integers(0, self.draws, count)
        members = rng.integers(0, self.z_fitted.shape[1], count)
        z = (self.z_fitted[chosen, members]
             + self.bandwidth[chosen] * rng.standard_normal(count))
        u = (z - self.z_mean[chosen]) / self.z_sd[chosen]
        mu, sigma = self.outputs(x, u)  # (S, count, n)
        picked = np.arange(count)
        return mu[chosen, picked] + sigma[chosen, picked] * rng.standard_normal((count,
                                                                                 len(x)))

    def log_weights(self, x_obs: np.ndarray | None, y_obs: np.ndarray | None
                    ) -> np.ndarray:
        """log weight of every (draw, z on Z_GRID): the prior, times the likelihood of the
        observed points when given; normalised over the grid per draw."""
        prior = self.log_prior(Z_GRID)
        if x_obs is None:
            total = prior
        else:
            mu, sigma = self.outputs(x_obs, Z_GRID)
            t = (y_obs - mu) / sigma
            total = prior - np.sum(0.5 * t * t + np.log(sigma), axis=2)
        return total - logsumexp(total, axis=1, keepdims=True)

    def log_predictive(self, x: np.ndarray, y: np.ndarray, log_w: np.ndarray
                       ) -> np.ndarray:
        """log density of y at x under the mixture over draws and z (weights log_w)."""
        mu, sigma = self.outputs(x, Z_GRID)
        t = (y - mu) / sigma
        log_density = -0.5 * t * t - np.log(sigma) - 0.5 * np.log(2 * np.pi)
        return logsumexp(log_density + log_w[..., None], axis=(0, 1)) - np.log(self.draws)

    def pit(self, x: np.ndarray, y: np.ndarray, log_w: np.ndarray) -> np.ndarray:
        from scipy.special import ndtr

        mu, sigma = self.outputs(x, Z_GRID)
        weights = np.exp(log_w)[..., None] / self.draws
        return np.sum(weights * ndtr((y - mu) / sigma), axis=(0, 1))

    def moments(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Population mean, epistemic SD (over draws of the population mean curve), and
        the between (over z) / within (sigma) SDs, averaged over draws."""
        mu, sigma = self.outputs(x, Z_GRID)
        w = np.exp(self.log_weights(None, None))[..., None]  # (S, Z, 1)
        mean_s = np.sum(w * mu, axis=1)
        between = np.sum(w * (mu - mean_s[:, None]) ** 2, axis=1).mean(axis=0)
        within = np.sum(w * sigma**2, axis=1).mean(axis=0)
        return {"mean": mean_s.mean(axis=0), "epistemic_sd": mean_s.std(axis=0),
                "between_sd": np.sqrt(between), "within_sd": np.sqrt(within),
                "aleatoric_sd": np.sqrt(between + within)}


def fit_latent(x: np.ndarray, y: np.ndarray, groups: np.ndarray,
               config: BNNConfig | None = None) -> LatentPosterior:
    config = config or BNNConfig()
    x_mean, x_scale = float(np.mean(x)), float(np.std(x)) or 1.0
    y_mean, y_scale = float(np.mean(y)), float(np.std(y)) or 1.0
    bnn = LatentBNN(config, groups)
    result = bnn.fit((x - x_mean) / x_scale, (y - y_mean) / y_scale, groups)
    posterior = result.inference_data.posterior
    names = [f"trunk{i}" for i in range(len(config.model.hidden_sizes))] + ["mean_head",
                                                                       "sigma_head"]
    layers = []
    for name in names:
        parts = []
        for part in ("W", "b"):
            values = posterior[_pymc_name(f"{name}.{part}")].values
            parts.append(values.reshape((-1, *values.shape[2:])))
        layers.append((parts[0], parts[1]))
    latent = posterior["latent"].values.reshape(-1, posterior["latent"].shape[-1])
    return LatentPosterior(layers, latent, x_mean, x_scale, y_mean, y_scale)
