"""A rubber-like model for the card tests, built without a fit: a tanh network whose
output layer is solved (least squares) to a Mooney-Rivlin group's curves, one draw per
material constant, with a constant noise SD and a smooth curve model. Its curves look
like the demo group's, in a fraction of a second."""

from __future__ import annotations

import numpy as np

from service.artifact import Artifact
from tests.service_process import random_artifact, smooth_curve_section
from training.data import mooney_rivlin_stress


def rubber_artifact(draws: int = 12, seed: int = 0, softening: float = 0.0,
                    noise_sd: float = 0.03) -> Artifact:
    """Stress ~ Mooney-Rivlin (C10 ~ 0.3, C01 ~ 0.05) on strains -0.5..0.5;
    `softening` > 0 subtracts softening * max(0, strain - 0.1)^2 * 20, a tension branch
    that stops rising (a curve built to be unstable)."""
    rng = np.random.default_rng(seed)
    width = 16
    base = random_artifact(draws=draws, hidden_sizes=(width,), seed=seed)
    x = np.linspace(-0.5, 0.5, 201)
    scale = 0.3
    weights = np.linspace(-3.0, 3.0, width)[None, :] + 0.3
    biases = np.linspace(-2.5, 2.5, width)
    hidden = np.tanh((x[:, None] / scale) @ weights.reshape(1, width) / 1.0 + biases)
    design = np.column_stack([hidden, np.ones_like(x)])
    heads, offsets = [], []
    for _ in range(draws):
        c10 = 0.3 * np.exp(0.04 * rng.standard_normal())
        c01 = 0.05 * np.exp(0.1 * rng.standard_normal())
        y = mooney_rivlin_stress(1.0 + x, c10, c01)
        y = y - softening * 20.0 * np.maximum(0.0, x - 0.1) ** 2
        solution = np.linalg.lstsq(design, y, rcond=None)[0]
        heads.append(solution[:-1])
        offsets.append(solution[-1])
    arrays = {
        "trunk0.W": np.tile(weights[None, :, :], (draws, 1, 1)),
        "trunk0.b": np.tile(biases[None, :], (draws, 1)),
        "mean_head.W": np.array(heads)[:, :, None],
        "mean_head.b": np.array(offsets)[:, None],
        "sigma_head.W": np.zeros((draws, width, 1)),
        "sigma_head.b": np.full((draws, 1), np.log(noise_sd)),
    }
    manifest = dict(base.manifest, normalisation={"x_mean": 0.0, "x_scale": scale,
                                                  "y_mean": 0.0, "y_scale": 1.0})
    manifest["curve_model"] = smooth_curve_section()
    return Artifact.from_bytes(Artifact(manifest=manifest, arrays=arrays).to_bytes())
