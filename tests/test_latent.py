"""The latent-input candidate (training.latent, a benchmark's comparison, not served) fits
through the model's own `fit`: its `build_model` takes what the base class passes."""

from __future__ import annotations

import numpy as np

from training.data import make_law_group
from training.latent import fit_latent
from training.model import BNNConfig


def test_the_latent_candidate_fits_and_samples_whole_curves() -> None:
    frame = make_law_group("gent", materials=5, points=8, seed=1)
    config = BNNConfig().with_overrides(hidden_sizes=(3,), ensemble_members=2,
                                        map_max_iterations=50)
    latent = fit_latent(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), config)
    strain = np.linspace(frame["strain"].min(), frame["strain"].max(), 7)
    samples = latent.samples(strain, 4, seed=0)
    assert samples.shape == (4, strain.size)
    assert np.all(np.isfinite(samples))
