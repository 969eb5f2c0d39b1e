"""Covariates of a model: the inputs beside the strain (temperature, rate, filler, ...).

A model fitted with covariates takes (strain, c_1..c_k) as its network input, each
standardised by the training data's mean and SD (the manifest's `covariates` section). A
*condition* is one vector of covariate values in physical units. This module holds what
the service needs to reason about conditions without running the network:

- standardisation (`normalise`), of the value or, for a covariate on a log scale
  (`Covariate.transform`), of its natural log (`transformed`): rates and other
  covariates tested over decades are read per decade, not per unit;
- whether a condition lies outside the training range of any covariate (`outside`), and
  whether a strain lies outside the strain range tested at the nearest tested condition
  (`untested_strain`: specimens tested hot often fail at smaller strains, so a strain
  inside the model's overall domain may never have been tested near the condition asked
  for);
- `distance`: the Euclidean distance, in standardised units (each covariate divided by
  its training SD), from a condition to the nearest *tested* condition (the manifest's
  `tested_conditions`). 0 at a tested condition; between tested conditions it is at most
  half their spacing; beyond the range it grows with the distance to the range. It is
  what tells interpolation between tested conditions from extrapolation away from them;
- grouping per-strain conditions into distinct ones (`distinct`), so each distinct
  condition is answered by one strain-only view of the posterior (posterior.py);
- beyond the tested range, how uncertain the level of the mean curve is
  (`extrapolation_sd`), and the per-draw factors that carry that uncertainty
  (`level_factors`).

Beyond the range. A network's trend in a covariate is learnt inside the tested range;
beyond it, tanh units saturate and the members of an ensemble tend to agree on a
continuation the data never constrained. So beyond the range the level of the mean curve
(its scale: the curve times a factor) carries a relative SD of its own, proportional to
the distance beyond the range and to the trend itself: per covariate, the change of
ln(level) across the tested range (`Covariate.log_level_change`, measured on the fit)
times the distance beyond the range in range widths; independent covariates add in
quadrature. One SD thus spans a trend that stops at the range's end to one that goes on
twice as steep. Inside the range of every covariate the term is exactly 0, so tested and
interpolated conditions answer as the network alone does.

The term enters every answer the same way: draw s's mean curve is multiplied by
f_s = exp(a z_s) / mean_t exp(a z_t), where a is the relative SD at the strain's condition
and z_s fixed standardised normal scores, one per draw. Summaries, quantiles, samples,
conditioning and exports all compute from the draws, so they all carry it, and a draw's
curve stays one curve across strains and conditions. The mean over draws of f is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from service.manifest import Manifest

# Conditions x tested conditions compared per block in `distance` (bounded memory).
_DISTANCE_BLOCK_ELEMENTS = 1_000_000
# Fixed seed of the order in which the draws take the normal scores of `level_factors`:
# scores in draw order would tie them to chains (draws are chain-major).
_SCORE_ORDER_SEED = 20261207


@dataclass(frozen=True)
class Conditions:
    """The covariates of one model version."""

    names: tuple[str, ...]
    units: tuple[str, ...]
    mean: np.ndarray  # (k,)
    scale: np.ndarray  # (k,)
    low: np.ndarray  # (k,) training minimum
    high: np.ndarray  # (k,) training maximum
    tested: np.ndarray  # (T, k) distinct tested conditions, physical units
    log: np.ndarray  # (k,) True where the network reads ln(value)
    # (k,) change of ln(level) across each covariate's range; None: no term beyond it
    level_change: np.ndarray | None = None
    # (T, 2) [min, max] strain tested at each tested condition; None: every tested
    # condition covered the whole training domain (or an artifact older than the field)
    strain_ranges: np.ndarray | None = None

    @classmethod
    def from_spec(cls, spec: Manifest) -> Conditions | None:
        if not spec.covariates or spec.tested_conditions is None:
            return None
        covariates = spec.covariates
        return cls(
            names=tuple(c.name for c in covariates),
            units=tuple(c.unit for c in covariates),
            mean=np.array([c.mean for c in covariates]),
            scale=np.array([c.scale for c in covariates]),
            low=np.array([c.min for c in covariates]),
            high=np.array([c.max for c in covariates]),
            tested=np.asarray(spec.tested_conditions, dtype=np.float64).reshape(
                -1, len(covariates)),
            log=np.array([c.transform == "log" for c in covariates]),
            level_change=(None if all(c.log_level_change is None for c in covariates)
                          else np.array([c.log_level_change or 0.0 for c in covariates])),
            strain_ranges=(None if spec.tested_strain_ranges is None else np.asarray(
                spec.tested_strain_ranges, dtype=np.float64).reshape(-1, 2)),
        )

    @property
    def count(self) -> int:
        return len(self.names)

    def transformed(self, values: np.ndarray) -> np.ndarray:
        """Each covariate on the scale the network reads it (`on_read_scale`)."""
        return on_read_scale(values, self.log)

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """(transformed value - mean) / scale, column per covariate."""
        return (self.transformed(values) - self.mean) / self.scale

    def outside(self, values: np.ndarray) -> np.ndarray:
        """Per row: any covariate outside its training range."""
        values = np.asarray(values, dtype=np.float64).reshape(-1, self.count)
        return np.any((values < self.low) | (values > self.high), axis=1)

    def central(self) -> np.ndarray:
        """The tested condition nearest the covariates' training means: where one
        condition stands for the model (fit report, training summaries)."""
        gap = self.normalise(self.tested)
        return self.tested[int(np.argmin(np.sum(gap * gap, axis=1)))]

    def distance(self, values: np.ndarray) -> np.ndarray:
        """Per row: standardised Euclidean distance to the nearest tested condition."""
        return self.nearest(values)[1]

    def nearest(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the index of the nearest tested condition (in `tested`) and the
        standardised Euclidean distance to it."""
        values = self.normalise(np.asarray(values, dtype=np.float64).reshape(-1, self.count))
        tested = self.normalise(self.tested)
        index = np.empty(values.shape[0], dtype=np.int64)
        squared = np.empty(values.shape[0])
        step = max(1, _DISTANCE_BLOCK_ELEMENTS // max(tested.size, 1))
        for start in range(0, values.shape[0], step):
            part = values[start:start + step]
            gap = part[:, None, :] - tested[None, :, :]
            sums = np.sum(gap * gap, axis=2)
            index[start:start + step] = np.argmin(sums, axis=1)
            squared[start:start + step] = np.min(sums, axis=1)
        return index, np.sqrt(squared)

    def untested_strain(self, strain: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Per strain (with its condition, a row of `values`): outside the strain range
        tested at the nearest tested condition. All False without `strain_ranges`.

        Nearest, not interpolated between neighbours: in k dimensions there is no one
        pair of neighbours, and the nearest condition's tests are the ones an answer
        there leans on most."""
        strain = np.asarray(strain, dtype=np.float64).reshape(-1)
        if self.strain_ranges is None:
            return np.zeros(strain.size, dtype=bool)
        values = np.asarray(values, dtype=np.float64).reshape(-1, self.count)
        unique, index = distinct(values)
        low, high = self.strain_ranges[self.nearest(unique)[0]].T
        return (strain < low[index]) | (strain > high[index])

    def tested_strain_range(self, values: np.ndarray) -> np.ndarray:
        """(n, 2): per row of `values`, the [min, max] strain tested at its nearest tested
        condition (a model with `strain_ranges`)."""
        assert self.strain_ranges is not None
        return self.strain_ranges[self.nearest(values)[0]]

    def beyond_range(self, values: np.ndarray) -> np.ndarray:
        """(n, k): per covariate, how far each row lies beyond its training range, in
        range widths on the scale the network reads it (0 inside the range; a
        covariate without a range - one value - counts nothing)."""
        values = self.transformed(np.asarray(values, dtype=np.float64).reshape(-1, self.count))
        low, high = self.transformed(self.low), self.transformed(self.high)
        width = high - low
        gap = np.maximum(np.maximum(low - values, values - high), 0.0)
        return np.divide(gap, width, out=np.zeros_like(gap), where=width > 0)

    def extrapolation_sd(self, values: np.ndarray) -> np.ndarray:
        """Per row: the relative SD of the mean curve's level beyond the tested range
        (module docstring); 0 inside the range and without `level_change`."""
        values = np.asarray(values, dtype=np.float64).reshape(-1, self.count)
        if self.level_change is None:
            return np.zeros(values.shape[0])
        return np.sqrt(np.sum((self.beyond_range(values) * self.level_change) ** 2, axis=1))


def level_factors(sd: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(draws, n): f_s = exp(a z_s) / mean_t exp(a z_t) for each relative SD a in `sd`
    (n,), with z the draws' `scores` (mean 0, SD 1). All 1 where a is 0."""
    logs = np.outer(np.asarray(scores, dtype=np.float64), np.asarray(sd, dtype=np.float64))
    factors = np.exp(logs - logs.max(axis=0))
    return factors / factors.mean(axis=0)


def normal_scores(draws: int) -> np.ndarray:
    """`draws` values of mean 0 and SD 1 spread as a standard normal (the midpoints of
    equal-probability bins, standardised), in a fixed pseudo-random order."""
    z = ndtri((np.arange(draws) + 0.5) / draws)
    z = (z - z.mean()) / z.std()
    return np.random.default_rng(_SCORE_ORDER_SEED).permutation(z)


def decorrelated_scores(scores: np.ndarray, spreads: np.ndarray) -> np.ndarray:
    """`scores` (draws,) made uncorrelated with each row of `spreads` (r, draws: how the
    draws differ somewhere, e.g. their log levels beyond the range), then standardised.

    Why: with a few draws, factors that happen to correlate with the draws' own spread
    would shrink it as often as they add to it; uncorrelated, the variances add. At most
    draws - 2 directions are removed (the strongest), so some spread is always left."""
    z = np.asarray(scores, dtype=np.float64)
    centred = np.asarray(spreads, dtype=np.float64).reshape(-1, z.size)
    centred = centred - centred.mean(axis=1, keepdims=True)
    if centred.size and np.any(centred != 0):
        _, singular, directions = np.linalg.svd(centred, full_matrices=False)
        keep = directions[:min(int(np.sum(singular > 1e-12 * singular[0])), z.size - 2)]
        z = z - keep.T @ (keep @ z)
    z = z - z.mean()
    return z / z.std()


def on_read_scale(values: np.ndarray, log: np.ndarray) -> np.ndarray:
    """Covariate values (column per covariate) on the scale the network reads them: ln(value)
    where `log` (k booleans) is true, the value itself elsewhere. Without a log column the
    array itself comes back (no copy: sums over it keep their bits)."""
    values = np.asarray(values, dtype=np.float64)
    log = np.asarray(log, dtype=bool)
    if not log.any():
        return values
    out = values.copy()
    with np.errstate(divide="ignore", invalid="ignore"):  # callers refuse values <= 0
        out[..., log] = np.log(values[..., log])
    return out


def distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of `values` (n, k) and, per row, the index of its distinct row."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] and np.all(values == values[0]):  # the common case: one condition
        return values[:1], np.zeros(values.shape[0], dtype=np.int64)
    unique, inverse = np.unique(values, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)
