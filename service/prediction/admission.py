"""Admission by cost: what a request will take, in time and memory, before any work.

Every limit on a single factor (strains, levels, draws, observed points, grid points) lets
through requests whose factors multiply to minutes of work or gigabytes: 100,000 strains
with 99 quantile levels, 10,000 samples of 1,000 strains. So every request is estimated
from its parsed shape and the model that would answer it (posterior draws S, network size
U = kernel.network_units), term by term (summaries, conditioning, quantiles, samples,
export grids, their fitted cards and their writing, the answer's encoding:
docs/performance.md lists the terms and their coefficients, in seconds of the reference
machine), and its memory: the decoded request (~70 bytes per number), the result arrays
(8 bytes per number), the encoded answer (22 bytes per JSON number, twice: encoded, then
joined into the write), and 64 MiB of working arrays for the numpy paths. The
coefficients live with the code they describe (kernel.py, quantile_kernel.py,
posterior.py, predictive.py, export/fit.py) and benchmarks/admission.py compares them
with measured times.

A request whose estimated work exceeds BUDGET_WORK_SHARE of `SURROGATE_REQUEST_TIME_BUDGET_S`,
or whose memory exceeds `SURROGATE_REQUEST_MEMORY_MB`, is a 413
that names the largest term and the most strains (or grid points) that would fit, before
anything is computed. The defaults (docs/performance.md) keep every admissible request
well inside the balancer's 60 s server timeout and let `SURROGATE_MAX_HEAVY_REQUESTS` of
them fit the pod's memory limit together.

Admitted requests above `LIGHT_SECONDS` or `LIGHT_BYTES` are heavy: at most
`SURROGATE_MAX_HEAVY_REQUESTS` run at once (service/prediction/gate.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service import export
from service.errors import PayloadTooLargeError
from service.inference import kernel, predictive, quantile_kernel
from service.inference.posterior import NUMPY_NS_PER_UNIT, Posterior
from service.settings import Settings

MIB = 1024 * 1024
# Encoding one number of an answer as JSON (orjson), and its bytes.
JSON_NS_PER_NUMBER = 30.0
JSON_BYTES_PER_NUMBER = 22
# A decoded request number: the body's bytes, a Python float and its list slot, a copy.
REQUEST_BYTES_PER_NUMBER = 70
# Working arrays of the numpy paths (chunked to about this much).
NUMPY_WORKING_BYTES = 64 * MIB
# One curve sample beyond the forward pass (a random normal, a gather, a multiply-add).
SAMPLE_NS = 12.0
# Conditioning arithmetic per strain and draw (the material's loadings and variances).
CONDITIONAL_NS = 70.0
# Writing one cell of an export table (CSV, Abaqus and LS-DYNA format numbers in Python).
RENDER_NS_PER_CELL = 400.0
RENDER_BYTES_PER_CELL = 25
# The default export grid is searched by refinement: several tables are built.
GRID_SEARCH_FACTOR = 1.5
# The share of the time budget an admitted request's estimated work may take. The rest is
# for what the estimate does not see: light requests whose kernel launches alternate with
# the large one's (service/inference/launches.py), and the estimate's own error
# (benchmarks/admission.py prints measured / estimated per kind of work).
BUDGET_WORK_SHARE = 0.75
# Below both, a request is light: it never waits for, nor takes, a heavy-work slot.
LIGHT_SECONDS = 0.05
LIGHT_BYTES = 32 * MIB


@dataclass(frozen=True)
class Term:
    """One part of a request's cost: what it is, the field to reduce, its share."""

    what: str
    field: str
    seconds: float
    bytes: int = 0


@dataclass(frozen=True)
class Estimate:
    terms: tuple[Term, ...]

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.terms)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.terms)

    @property
    def heavy(self) -> bool:
        return self.seconds > LIGHT_SECONDS or self.bytes > LIGHT_BYTES

    def largest(self, settings: Settings) -> Term:
        """The term taking the largest share of either budget."""
        return max(self.terms, key=lambda t: max(
            t.seconds / settings.request_time_budget_s,
            t.bytes / (settings.request_memory_mb * MIB)))

    def describe(self) -> str:
        return f"about {self.seconds:.3g} s of work and {self.bytes / MIB:.0f} MiB"


def _ns(value: float) -> float:
    return value * 1e-9


def _encoding_ns(numbers: float) -> float:
    return numbers * JSON_NS_PER_NUMBER


def _encoding_bytes(numbers: float) -> int:
    """The numbers' array, their JSON, and the JSON joined into the response's write."""
    return int(numbers * (2 * JSON_BYTES_PER_NUMBER + 8))


def _answer(numbers: float, field: str = "strain") -> Term:
    return Term("encoding the answer", field, _ns(_encoding_ns(numbers)),
                _encoding_bytes(numbers))


def _compiled(posterior: Posterior) -> bool:
    """Whether the compiled kernels answer: the model's own kernel, or (a model with
    covariates) the strain-only views it answers each condition with."""
    return posterior.kernel is not None or getattr(posterior, "conditions", None) is not None


def predict_estimate(posterior: Posterior, strains: int, *, levels: int = 0,
                     draws: int = 0, observed: int = 0, tangent: bool = False,
                     reference_share: float = 0.0) -> Estimate:
    """A native predict request's cost (levels: quantile levels, draws: samples asked,
    observed: the material's measured points, reference_share: the share of strains at
    conditions beyond a covariate's range that the numpy reference answers)."""
    n, s, u = strains, posterior.draws, posterior.units
    numpy_path = observed > 0 or not _compiled(posterior)
    terms = [Term("request", "strain", 0.0, (n + 2 * observed) * REQUEST_BYTES_PER_NUMBER)]
    if numpy_path:
        terms.append(Term("summaries (numpy path)", "strain",
                          _ns(n * s * (u * NUMPY_NS_PER_UNIT + CONDITIONAL_NS)),
                          NUMPY_WORKING_BYTES))
    else:
        terms.append(_compiled_summaries(posterior, n, tangent, reference_share, "strain"))
    if observed:
        terms.append(Term(f"conditioning on {observed} observed points", "observed.strain",
                          _ns(observed * s * u * NUMPY_NS_PER_UNIT)))
    if levels:
        terms.append(_quantiles(posterior, n, levels, conditioned=numpy_path))
    if draws:
        terms.append(_samples(posterior, n, draws, "draws"))
    fields = 6 + (2 if posterior.curve is not None else 0) + (2 if tangent else 0)
    terms.append(_answer(n * fields))
    return Estimate(tuple(terms))


def _quantiles(posterior: Posterior, points: int, levels: int, conditioned: bool,
               field: str = "quantiles") -> Term:
    s, u = posterior.draws, posterior.units
    if conditioned or not _compiled(posterior):
        ns = points * s * (u * NUMPY_NS_PER_UNIT + levels * predictive.MIXTURE_LEVEL_NS)
        memory = NUMPY_WORKING_BYTES
    else:
        ns = points * s * (u * quantile_kernel.FORWARD_NS_PER_UNIT
                           + levels * quantile_kernel.LEVEL_NS)
        memory = 0
    return Term(f"quantiles: {levels} levels x {points} strains x {s} draws", field,
                _ns(ns + _encoding_ns(points * levels)),
                memory + _encoding_bytes(points * levels))


def _samples(posterior: Posterior, points: int, draws: int, field: str) -> Term:
    # Only the posterior draws the samples use are evaluated: at most one per sample.
    s, u = min(posterior.draws, draws), posterior.units
    return Term(f"samples: {draws} draws x {points} strains", field,
                _ns(points * s * u * NUMPY_NS_PER_UNIT + points * draws * SAMPLE_NS
                    + _encoding_ns(points * draws)),
                NUMPY_WORKING_BYTES + 8 * points * draws + _encoding_bytes(points * draws))


def _compiled_summaries(posterior: Posterior, strains: int, tangent: bool,
                        reference_share: float, field: str) -> Term:
    """The summaries by the compiled kernels, but `reference_share` of the strains (far
    conditions asked at a few strains each) by the numpy reference."""
    factor = kernel.TANGENT_FACTOR if tangent else 1.0
    per_strain = posterior.draws * posterior.units
    compiled = (1.0 - reference_share) * kernel.SUMMARY_NS_PER_UNIT * factor
    return Term("summaries", field, _ns(strains * per_strain * (
        compiled + reference_share * NUMPY_NS_PER_UNIT)),
        NUMPY_WORKING_BYTES if reference_share > 0 else 0)


def oip_estimate(posterior: Posterior, strains: int, outputs: int, tangent: bool,
                 reference_share: float = 0.0) -> Estimate:
    """An Open Inference Protocol request's cost (any transport; JSON answer assumed);
    `reference_share` as in `predict_estimate`."""
    if not _compiled(posterior):
        summaries = Term("summaries", "inputs[0].shape", _ns(
            strains * posterior.draws * posterior.units * NUMPY_NS_PER_UNIT))
    else:
        summaries = _compiled_summaries(posterior, strains, tangent, reference_share,
                                        "inputs[0].shape")
    return Estimate((
        Term("request", "inputs[0].shape", 0.0, strains * REQUEST_BYTES_PER_NUMBER),
        summaries,
        _answer(strains * (outputs + 1), "inputs[0].shape"),
    ))


def export_estimate(posterior: Posterior, points: int, levels: int, curves: int,
                    searched: bool, tables: int = 1, form: str | None = None) -> Estimate:
    """An export's cost on `points` grid points (evaluated with their midpoints); a
    `searched` (default) grid is built several times on the way. `tables` over a
    covariate's values each cost one table, all held until the file is written. With a
    `form`, a card is fitted per column (mean, quantiles, curves), each over the tables'
    values: work that does not depend on the grid."""
    evaluated = tables * (2 * points - 1)
    repeat = GRID_SEARCH_FACTOR if searched else 1.0
    s, u = posterior.draws, posterior.units
    terms = [Term("summaries and tangent", "points", repeat * _ns(
        evaluated * s * u * kernel.SUMMARY_NS_PER_UNIT * kernel.TANGENT_FACTOR),
        evaluated * 6 * 8 * 2)]
    if levels:
        quantiles = _quantiles(posterior, evaluated, levels, conditioned=False)
        terms.append(Term(quantiles.what, "quantiles", repeat * quantiles.seconds,
                          quantiles.bytes))
    if curves:
        sampled = _samples(posterior, evaluated, curves, "curves")
        terms.append(Term(sampled.what, "curves", repeat * sampled.seconds, sampled.bytes))
    if form is not None:
        columns = 1 + levels + curves
        # What to reduce: the values over the covariate, else the columns' source.
        field = ("over" if tables > 1 else "curves" if curves
                 else "quantiles" if levels else "form")
        terms.append(Term(f"fitting {columns * tables} {form} cards", field,
                          export.fitting_seconds(form, columns, tables)))
    cells = tables * points * (7 + levels + curves)
    terms.append(Term("writing the table", "points", _ns(cells * RENDER_NS_PER_CELL),
                      3 * cells * RENDER_BYTES_PER_CELL))
    return Estimate(tuple(terms))


def within_budget(estimate: Estimate, settings: Settings, slowdown: float = 1.0) -> bool:
    return (estimate.seconds * slowdown <= settings.request_time_budget_s * BUDGET_WORK_SHARE
            and estimate.bytes <= settings.request_memory_mb * MIB)


def check_budget(estimate_for: Callable[[int], Estimate], size: int, field: str,
                 settings: Settings, unit: str = "strains",
                 slowdown: float = 1.0) -> Estimate:
    """The estimate at `size` (strains, or grid points: the request's scale), or a 413
    naming the largest term and the largest `size` within the budget. `slowdown`: how
    much slower than the reference machine this replica now runs (gate.WorkGate.slowdown)."""
    estimate = estimate_for(size)
    if within_budget(estimate, settings, slowdown):
        return estimate
    low, high = 0, size  # low fits (or is 0), high does not
    while high - low > 1:
        middle = (low + high) // 2
        if within_budget(estimate_for(middle), settings, slowdown):
            low = middle
        else:
            high = middle
    largest = estimate.largest(settings)
    budget = (f"the budget is {settings.request_time_budget_s:g} s and "
              f"{settings.request_memory_mb} MiB per request")
    if slowdown > 1.05:
        budget += f" (this replica runs {slowdown:.1f}x slower than the reference now)"
    fits = (f"at most {low} {unit} would fit" if low
            else f"no number of {unit} fits with these options")
    details = [{"field": field, "limit": low, "message": fits}]
    if largest.field != field:
        details.append({"field": largest.field, "message": f"the largest part: {largest.what}"})
    raise PayloadTooLargeError(
        f"this request would take {estimate.describe()} (largest part: {largest.what}, "
        f"{largest.seconds:.3g} s, {largest.bytes / MIB:.0f} MiB); {budget}: reduce {field} "
        f"({fits})"
        + (f" or {largest.field}" if largest.field != field else ""), details)
