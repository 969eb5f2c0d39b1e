"""Anchored priors (training.model.ANCHORED_PRIORS): each member of a MAP ensemble of a
model with covariates centres its prior on its own draw from that prior and starts there,
so where the data say nothing about a covariate the members stay spread as the prior is,
instead of all shrinking to the same curve. Two tiny seeded bootstrap fits, with and
without anchors, on the same data."""

from __future__ import annotations

import numpy as np
import pytest

from training import model as model_module
from training.config import BNNConfig
from training.covariate_data import make_covariate_group
from training.model import HeteroskedasticBNN

TEMPERATURES = (273.15, 296.15, 323.15)


def standardised(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std()


def member_means(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Every member's mean output (members, rows) at normalised inputs x (rows, 1 + k)."""
    hidden = np.tanh(x[None] @ arrays["trunk0.W"] + arrays["trunk0.b"][:, None, :])
    return (hidden @ arrays["mean_head.W"])[..., 0] + arrays["mean_head.b"]


def fit(anchored: bool, monkeypatch: pytest.MonkeyPatch
        ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    monkeypatch.setattr(model_module, "ANCHORED_PRIORS", anchored)
    frame = make_covariate_group(6, 10, 3, "compound", temperatures=TEMPERATURES)
    x = np.column_stack([standardised(frame["strain"].to_numpy()),
                         standardised(frame["temperature"].to_numpy())])
    y = standardised(frame["stress"].to_numpy())
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=4,
                                        map_max_iterations=400)
    return HeteroskedasticBNN(config).fit(x, y, frame["material"].to_numpy()).arrays, x, y


def test_anchored_members_spread_where_the_data_say_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plain, x, y = fit(False, monkeypatch)
    anchored, _, _ = fit(True, monkeypatch)
    fits = {"plain": plain, "anchored": anchored}
    # The members' weights on the covariate: shrunk to nearly one value without anchors
    # (SD 0.11 over members when written), spread toward the prior SD 1 with them (0.48).
    spread = {k: a["trunk0.W"][:, 1, :].std(axis=0).mean() for k, a in fits.items()}
    assert spread["anchored"] > 3 * spread["plain"]
    # Far beyond the tested temperatures (2.8 SD past the last) the members disagree
    # more (median SD of their means 0.065 without anchors, 0.152 with them when written).
    strain = np.linspace(x[:, 0].min(), x[:, 0].max(), 21)
    far = np.column_stack([strain, np.full(strain.size, x[:, 1].max() + 2.8)])
    far_sd = {k: np.median(member_means(a, far).std(axis=0)) for k, a in fits.items()}
    assert far_sd["anchored"] > 1.8 * far_sd["plain"]
    # At the data, the ensemble's mean curve fits as well (RMS error 0.474 and 0.469).
    error = {k: np.sqrt(np.mean((member_means(a, x).mean(axis=0) - y) ** 2))
             for k, a in fits.items()}
    assert error["anchored"] < 1.05 * error["plain"]


def test_a_model_without_covariates_has_no_anchors() -> None:
    bnn = HeteroskedasticBNN(BNNConfig().with_overrides(hidden_sizes=(4,)))
    strain = np.linspace(-1, 1, 10)
    model = bnn.build_model(strain, strain)
    assert bnn.prior_anchors == {}
    assert not any(name.endswith("_anchor") for name in model.named_vars)


def test_a_covariate_model_keeps_a_longer_lbfgs_history() -> None:
    from training.methods.map import DEFAULT_LBFGS_HISTORY, map_fit
    from training.model import COVARIATE_LBFGS_HISTORY

    frame = make_covariate_group(4, 8, 3, "compound", temperatures=TEMPERATURES)
    x = np.column_stack([standardised(frame["strain"].to_numpy()),
                         standardised(frame["temperature"].to_numpy())])
    y = standardised(frame["stress"].to_numpy())
    bnn = HeteroskedasticBNN(BNNConfig().with_overrides(hidden_sizes=(4,),
                                                        map_max_iterations=60))
    model = bnn.build_model(x, y)
    start = model.initial_point()
    fitted = bnn.map_fit(model, start)
    func = bnn.logp_dlogp(model)
    longer = map_fit(func, model, start, bnn.config.map, COVARIATE_LBFGS_HISTORY)
    shorter = map_fit(func, model, start, bnn.config.map, DEFAULT_LBFGS_HISTORY)
    assert fitted.log_posterior == longer.log_posterior
    assert fitted.log_posterior != shorter.log_posterior
    # A strain-only model keeps scipy's default (its fits stay those from before).
    strain_only = HeteroskedasticBNN(bnn.config)
    plain = strain_only.build_model(x[:, 0], y)
    assert (strain_only.map_fit(plain, plain.initial_point()).log_posterior
            == map_fit(strain_only.logp_dlogp(plain), plain, plain.initial_point(),
                       bnn.config.map, DEFAULT_LBFGS_HISTORY).log_posterior)
