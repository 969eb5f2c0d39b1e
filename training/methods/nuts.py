"""NUTS through nutpie (numba backend), several chains started at MAP points."""

from __future__ import annotations

from typing import Any

import pymc as pm

from training.methods.map import map_starts
from training.methods.target import FitTarget


def fit(bnn: FitTarget, model: pm.Model) -> tuple[Any, dict[str, Any], None, int]:
    import nutpie

    nuts = bnn.config.nuts
    # Chains start at MAP points of different random initialisations: warm-up then
    # only adapts the mass matrix instead of crossing the whole weight space, and
    # chains in different modes are exposed by the function-space R-hat.
    start = map_starts(bnn, model, 1)[0].point
    compiled = nutpie.compile_pymc_model(model, initial_points=start)
    per_chain = -(-nuts.draws // nuts.chains)
    idata = nutpie.sample(compiled, draws=per_chain, tune=nuts.tune, chains=nuts.chains,
                          cores=nuts.chains, seed=bnn.config.model.seed, progress_bar=False,
                          target_accept=nuts.target_accept,
                          low_rank_modified_mass_matrix=True)
    diagnostics = nuts_diagnostics(idata)
    diagnostics.update(chains=nuts.chains, tune=nuts.tune, draws_per_chain=per_chain,
                       target_accept=nuts.target_accept)
    return idata, diagnostics, None, nuts.chains


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
