"""How strongly the level of a covariate model's mean curve moves across each covariate's
tested range: the scale of its uncertainty beyond the range.

Per covariate, the mean curve is evaluated at `GRID_POINTS` values spanning the training
range (on the scale the network reads it; the other covariates at the central tested
condition), its level taken as the RMS over the training strains, and the total variation
of ln(level) along the grid, but never less than `LEVEL_CHANGE_FLOOR`, recorded as
`Covariate.log_level_change`. The service turns
it into a relative SD of the level beyond the range (service.inference.conditions,
"Beyond the range"); docs/covariates.md, "Beyond the tested range", measures it.
"""

from __future__ import annotations

import numpy as np

from service.inference.posterior import Posterior

# Points along a covariate's range: a trend that turns back inside the range counts both
# ways (total variation), not only its end-to-end change.
GRID_POINTS = 9
# Strains over the training domain at which the level is taken.
LEVEL_STRAINS = 41
# The least level change a covariate is given: a trend that is mild or flat inside the
# tested range says little about what lies beyond it (a transition the data never reached),
# so no level is taken as known better than this many nats per range width beyond the
# range. Without it a mild temperature trend left the far epistemic SD at 2.5-2.9x its
# median at the tested conditions; with it 3.8x, and far-below coverage 0.87 -> 0.92-0.94
# (docs/covariates.md, "The unloaded state and the floor, measured", has the NLPD cost).
LEVEL_CHANGE_FLOOR = 0.5
# Levels below this fraction of the largest along the grid are floored there: ln of a
# curve that vanishes would otherwise count as an unbounded change.
_LEVEL_FLOOR = 1e-6


def log_level_changes(posterior: Posterior, floor: float = LEVEL_CHANGE_FLOOR
                      ) -> list[float]:
    """Per covariate of `posterior` (a model with covariates, fitted without this term),
    the total variation of ln(level of the mean curve) across its training range, at
    least `floor` (0 for a covariate with one tested value)."""
    conditions = posterior.conditions
    assert conditions is not None
    strain = np.linspace(*posterior.domain, LEVEL_STRAINS)
    central = conditions.central()
    changes = []
    for j in range(conditions.count):
        low, high = conditions.low[j], conditions.high[j]
        if high <= low:
            changes.append(0.0)
            continue
        grid = (np.geomspace(low, high, GRID_POINTS) if conditions.log[j]
                else np.linspace(low, high, GRID_POINTS))
        levels = []
        for value in grid:
            condition = central.copy()
            condition[j] = value
            mean = posterior.at(condition).predict(strain).mean
            levels.append(float(np.sqrt(np.mean(mean * mean))))
        level = np.maximum(np.array(levels), _LEVEL_FLOOR * max(max(levels), 1e-300))
        change = float(np.sum(np.abs(np.diff(np.log(level)))))
        changes.append(max(change, floor))
    return changes
