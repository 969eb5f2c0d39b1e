"""The covariate parts of a predict request: where each strain and observed point is, the
extrapolation policy over covariates, and the answer's condition fields.

A model fitted with covariates needs every one of them in `covariates` (a number for all
strains, or a list with one value per strain); `observed.covariates` places the observed
points, by default at the request's numbers. Each mistake is a 422 naming the field:
`covariates` sent to a model without them or missing for one with them,
`covariates.<name>` unknown, missing or of the wrong length, `observed.covariates` where
the request's covariates are per-strain lists, a value <= 0 of a covariate the model reads
on a log scale. Non-finite values never get here (the
request schema refuses them, naming `covariates.<name>` and the index).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.errors import InvalidInputError
from service.inference.at_conditions import Placement
from service.inference.conditions import Conditions, distinct
from service.inference.posterior import Posterior
from service.prediction.request import PredictRequest
from service.registry.reads import VersionRef

# How many offending points an error names.
MAX_NAMED_POINTS = 20


def _invalid(field: str, message: str, detail: str) -> InvalidInputError:
    return InvalidInputError(message, [{"field": field, "message": detail}])


def covariate_matrix(given: dict[str, Any] | None, conditions: Conditions, count: int,
                     field: str, points: str) -> np.ndarray:
    """(count, k) values of `given` in the model's covariate order; 422 naming the field."""
    names = ", ".join(conditions.names)
    if given is None:
        raise _invalid(field, f"this model takes covariates ({names}); give {field} with "
                       "a value for each", f"required: {names}")
    unknown = [key for key in given if key not in conditions.names]
    if unknown:
        raise _invalid(f"{field}.{unknown[0]}", f"{field}.{unknown[0]} is not a covariate "
                       f"of this model (it has {names})", "unknown covariate")
    out = np.empty((count, conditions.count))
    for j, name in enumerate(conditions.names):
        if name not in given:
            raise _invalid(f"{field}.{name}", f"{field}.{name} is missing: this model needs "
                           f"every one of its covariates ({names})", "missing covariate")
        value = given[name]
        if isinstance(value, list):
            if len(value) != count:
                raise _invalid(f"{field}.{name}", f"{field}.{name} has {len(value)} values; "
                               f"{points} has {count}: give one per point or a single "
                               "number", "wrong length")
            out[:, j] = value
        else:
            out[:, j] = value
        if conditions.log[j]:
            _refuse_non_positive(out[:, j], f"{field}.{name}", name, isinstance(value, list))
    return out


def _refuse_non_positive(values: np.ndarray, field: str, name: str, per_point: bool) -> None:
    """422 where a covariate the model reads on a log scale is not > 0."""
    bad = np.flatnonzero(values <= 0)
    if not bad.size:
        return
    where = f"{field}[{int(bad[0])}]" if per_point else field
    raise _invalid(where, f"{where} is {values[bad[0]]:g}: model reads {name} on a log "
                   "scale, so every value must be > 0", "must be > 0 (log scale)")


def placement(body: PredictRequest, posterior: Posterior, ref: VersionRef
              ) -> Placement | None:
    """Where the request's strains (and observed points) are; None for a model without
    covariates (which refuses them)."""
    conditions = posterior.conditions
    observed = body.observed
    if conditions is None:
        for field, given in (("covariates", body.covariates),
                             ("observed.covariates", observed and observed.covariates)):
            if given is not None:
                raise _invalid(field, f"model {ref.name!r} version {ref.version} was fitted "
                               f"without covariates; remove {field}",
                               "not supported by this version")
        return None
    target = covariate_matrix(body.covariates, conditions, len(body.strain), "covariates",
                              "strain")
    at_observed = None
    if observed is not None:
        given = observed.covariates
        if given is None:
            if body.covariates is not None and any(isinstance(v, list)
                                                   for v in body.covariates.values()):
                raise _invalid("observed.covariates", "observed.covariates is required when "
                               "the request's covariates are per-strain lists",
                               "required with per-strain covariates")
            given = body.covariates
        at_observed = covariate_matrix(given, conditions, len(observed.strain),
                                       "observed.covariates", "observed.strain")
    return Placement(target, at_observed)


def reference_share(posterior: Posterior, values: np.ndarray | None) -> float:
    """The share of strains at per-strain conditions `values` ((n, k), physical; None:
    none) that `Posterior.predict` answers with the float64 reference (far conditions
    asked at a few strains each, `Posterior.far_split`): admission counts them at its
    cost."""
    if values is None or values.shape[0] == 0:
        return 0.0
    _, few = posterior.far_split(values)
    return few.size / values.shape[0]


def request_reference_share(body: PredictRequest, posterior: Posterior) -> float:
    """`reference_share` of a native request's strains. Read before the request is
    checked against the model: covariates it would refuse count as none (the 422 comes
    when it is answered)."""
    if posterior.conditions is None or posterior.level_scores is None:
        return 0.0
    if not any(isinstance(value, list) for value in (body.covariates or {}).values()):
        return 0.0  # one condition for every strain: its view answers on the kernel
    try:
        values = covariate_matrix(body.covariates, posterior.conditions, len(body.strain),
                                  "covariates", "strain")
    except InvalidInputError:
        return 0.0
    return reference_share(posterior, values)


def reject_outside(posterior: Posterior, values: np.ndarray, ref: VersionRef,
                   field: str) -> None:
    """422 naming the covariate values outside their training range (extrapolation=reject)."""
    conditions = posterior.conditions
    assert conditions is not None
    bad = (values < conditions.low) | (values > conditions.high)
    rows, columns = np.nonzero(bad)
    if rows.size == 0:
        return
    details = []
    for i, j in list(zip(rows, columns, strict=True))[:MAX_NAMED_POINTS]:
        name = conditions.names[j]
        low, high = conditions.low[j], conditions.high[j]
        details.append({"field": f"{field}.{name}[{i}]", "value": float(values[i, j]),
                        "message": f"outside the training range [{low:g}, {high:g}]"})
    raise InvalidInputError(
        f"{rows.size} covariate value(s) lie outside the training range of model "
        f"{ref.name!r} version {ref.version} (extrapolation=reject): "
        + ", ".join(f"{d['field']}={d['value']:g}" for d in details), details)


def reject_untested_strains(posterior: Posterior, strain: np.ndarray, values: np.ndarray,
                            ref: VersionRef, field: str) -> None:
    """422 naming the strains outside the range tested at their nearest tested condition
    (extrapolation=reject; strains outside the whole training domain and covariates outside
    their ranges are refused before, by their own checks)."""
    conditions = posterior.conditions
    assert conditions is not None
    untested = np.flatnonzero(conditions.untested_strain(strain, values))
    if untested.size == 0:
        return
    named = untested[:MAX_NAMED_POINTS]
    ranges = conditions.tested_strain_range(values[named])
    details = [{"field": f"{field}[{i}]", "value": float(strain[i]),
                "message": f"outside the strain range [{low:g}, {high:g}] tested at the "
                           f"nearest tested condition"}
               for i, (low, high) in zip(named, ranges, strict=True)]
    more = f" and {untested.size - named.size} more" if untested.size > named.size else ""
    raise InvalidInputError(
        f"{untested.size} strain(s) lie outside the strain range tested at the nearest "
        f"tested condition of model {ref.name!r} version {ref.version} "
        f"(extrapolation=reject): "
        + ", ".join(f"{d['field']}={d['value']:g}" for d in details) + more, details)


def condition_fields(posterior: Posterior, strain: np.ndarray,
                     observed_strain: np.ndarray | None, where: Placement,
                     extrapolation: str) -> dict[str, Any]:
    """`condition_distance` (always) and, with extrapolation=flag, the
    `outside_training_domain` flags over strain and covariates."""
    conditions = posterior.conditions
    assert conditions is not None
    fields: dict[str, Any] = {}
    if extrapolation == "flag":
        fields["outside_training_domain"] = posterior.outside_domain(strain, where.target)
        if where.observed is not None and observed_strain is not None:
            fields["observed_outside_training_domain"] = posterior.outside_domain(
                observed_strain, where.observed)
    unique, index = distinct(where.target)
    fields["condition_distance"] = conditions.distance(unique)[index]
    return fields
