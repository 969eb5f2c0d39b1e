"""The covariate query parameters of GET /v1/models/{name}/export (docs/export.md):

    covariates=temperature:353.15,rate:0.01     the condition (every covariate of the model)
    over=temperature:293.15,313.15,333.15       one table per value of one covariate
    over=temperature                            ... per value it was tested at

With `over`, `covariates` names the other covariates only. Each mistake is a 422 naming
the field: `covariates` (missing, malformed, or sent to a model without covariates),
`covariates.<name>` (unknown, missing, not a finite number, given twice), `over`
(unknown covariate, malformed, too many values) and `over[i]` (a value that is not a
finite number, or repeated).
"""

from __future__ import annotations

import math

import numpy as np

from service.errors import InvalidInputError
from service.inference.conditions import Conditions
from service.prediction.conditions import covariate_matrix

# Tables in one export over a covariate: a solver's table of temperatures or rates has a
# handful of rows; each one costs a table's work.
MAX_OVER_VALUES = 50


def _invalid(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", [{"field": field, "message": message}])


def _number(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _invalid(field, f"{text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise _invalid(field, f"{text.strip()!r} is not a finite number")
    return value


def parse_covariates(text: str) -> dict[str, float]:
    """'temperature:353,rate:0.01' -> {'temperature': 353.0, 'rate': 0.01}."""
    given: dict[str, float] = {}
    for item in text.split(","):
        name, colon, value = item.partition(":")
        name = name.strip()
        if not colon or not name:
            raise _invalid("covariates", f"{item.strip()!r} is not NAME:VALUE (e.g. "
                           "covariates=temperature:353.15,rate:0.01)")
        if name in given:
            raise _invalid(f"covariates.{name}", "is given twice")
        given[name] = _number(value, f"covariates.{name}")
    return given


def parse_over(text: str) -> tuple[str, list[float] | None]:
    """'temperature:293,313' -> ('temperature', [293.0, 313.0]); 'temperature' ->
    ('temperature', None): the values it was tested at."""
    name, colon, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise _invalid("over", "give a covariate's name, e.g. over=temperature:293.15,333.15")
    if not colon:
        return name, None
    values: list[float] = []
    for index, part in enumerate(rest.split(",")):
        value = _number(part, f"over[{index}]")
        if value in values:
            raise _invalid(f"over[{index}]", f"{value:g} is asked twice")
        values.append(value)
    if len(values) > MAX_OVER_VALUES:
        raise _invalid("over", f"{len(values)} values; at most {MAX_OVER_VALUES} per export")
    return name, values


def export_conditions(conditions: Conditions | None, covariates: str | None,
                      over: str | None, name: str, version: int
                      ) -> tuple[np.ndarray | None, str | None]:
    """The conditions to export ((m, k) physical values; m = 1 without `over`, rows in
    ascending order of the `over` covariate) and the `over` covariate's name; (None, None)
    for a model without covariates, which refuses both parameters."""
    if conditions is None:
        for field, given in (("covariates", covariates), ("over", over)):
            if given is not None:
                raise _invalid(field, f"model {name!r} version {version} was fitted without "
                               "covariates")
        return None, None
    fixed = parse_covariates(covariates) if covariates is not None else {}
    if over is None:
        if covariates is None:
            raise _invalid("covariates", "this model takes covariates ("
                           f"{', '.join(conditions.names)}): give covariates=NAME:VALUE,... "
                           "for each")
        return covariate_matrix(fixed, conditions, 1, "covariates", "the export"), None
    over_name, values = parse_over(over)
    if over_name not in conditions.names:
        raise _invalid("over", f"{over_name!r} is not a covariate of this model (it has "
                       f"{', '.join(conditions.names)})")
    if over_name in fixed:
        raise _invalid(f"covariates.{over_name}", "is given by over; leave it out of "
                       "covariates")
    if values is None:
        values = np.unique(conditions.tested[:, conditions.names.index(over_name)]).tolist()
    rows = covariate_matrix({**fixed, over_name: sorted(values)}, conditions, len(values),
                            "covariates", "over")
    return rows, over_name
