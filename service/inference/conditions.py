"""Covariates of a model: the inputs beside the strain (temperature, rate, filler, ...).

A model fitted with covariates takes (strain, c_1..c_k) as its network input, each
standardised by the training data's mean and SD (the manifest's `covariates` section). A
*condition* is one vector of covariate values in physical units. This module holds what
the service needs to reason about conditions without running the network:

- standardisation (`normalise`), of the value or, for a covariate on a log scale
  (`Covariate.transform`), of its natural log (`transformed`): rates and other
  covariates tested over decades are read per decade, not per unit;
- whether a condition lies outside the training range of any covariate (`outside`);
- `distance`: the Euclidean distance, in standardised units (each covariate divided by
  its training SD), from a condition to the nearest *tested* condition (the manifest's
  `tested_conditions`). 0 at a tested condition; between tested conditions it is at most
  half their spacing; beyond the range it grows with the distance to the range. It is
  what tells interpolation between tested conditions from extrapolation away from them;
- grouping per-strain conditions into distinct ones (`distinct`), so each distinct
  condition is answered by one strain-only view of the posterior (posterior.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.manifest import Manifest

# Conditions x tested conditions compared per block in `distance` (bounded memory).
_DISTANCE_BLOCK_ELEMENTS = 1_000_000


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
        values = self.normalise(np.asarray(values, dtype=np.float64).reshape(-1, self.count))
        tested = self.normalise(self.tested)
        out = np.empty(values.shape[0])
        step = max(1, _DISTANCE_BLOCK_ELEMENTS // max(tested.size, 1))
        for start in range(0, values.shape[0], step):
            part = values[start:start + step]
            gap = part[:, None, :] - tested[None, :, :]
            out[start:start + step] = np.sqrt(np.min(np.sum(gap * gap, axis=2), axis=1))
        return out


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
