"""The MAP ensembles: the Bayesian bootstrap (`bootstrap`) and the plain deep ensemble
(`ensemble`). Every member is one MAP fit and one stored draw."""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm

from training.config import BootstrapSettings, EnsembleSettings
from training.methods.map import map_starts
from training.methods.target import FitTarget


def fit(bnn: FitTarget, model: pm.Model) -> tuple[Any, dict[str, Any], None, int]:
    import arviz as az

    cfg = bnn.config
    settings = cfg.settings
    assert isinstance(settings, BootstrapSettings | EnsembleSettings)
    fits = map_starts(bnn, model, settings.ensemble_members)
    posterior = {name: np.stack([fit.point[name] for fit in fits])[None]
                 for name in fits[0].point}
    idata = az.from_dict(posterior=posterior)
    logps = [fit.log_posterior for fit in fits]
    at_cap = sum(not fit.converged for fit in fits)
    diagnostics = {
        "method": cfg.method, "members": settings.ensemble_members,
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
