"""Posterior predictive summaries of a stored BNN, in physical units.

For every strain x and posterior draw s the network gives mu_s(x) and sigma_s(x):
  mean         = average_s mu_s(x)
  aleatoric_sd = sqrt(average_s sigma_s(x)^2)     scatter of the data
  epistemic_sd = std_s mu_s(x)                    confidence in the mean
  total_sd     = sqrt(aleatoric_sd^2 + epistemic_sd^2)   law of total variance
and, when asked, the tangent d mean / d strain = average_s d mu_s/dx with its epistemic SD
std_s d mu_s/dx (forward-mode derivative of the network, exact, no finite differences).

`Posterior.predict` runs the fast kernel (`service.inference.kernel`: float32, compiled by
Numba, both cores); `Posterior.predict_reference` is the plain-numpy reference it is tested
against: clear, chunked to bound memory, float64. Architectures the kernel does not
support fall back to the reference. `Posterior.network_outputs` is the per-draw forward
pass in numpy, which the reference, the predictive quantiles and samples and the curve
model (service.inference.curves) all use.

Models with covariates (service.inference.conditions): the network's input is (strain,
covariates), and `network_outputs` takes the covariates as an (n, k) array. Everything
else - the kernels, quantiles, samples, conditioning and export - works on one strain
input, so a covariate model answers at a condition through `at(condition)`: a strain-only
view whose first-layer bias holds the covariates' contribution,
b0' = b0 + c_norm . W0[:, 1:, :] per draw (exact: the first layer is affine in its
inputs). Views are cached (the most recent `VIEW_CACHE_SIZE` conditions). The summaries
are the exception: one kernel takes each strain's condition itself (`condition_kernel`:
the covariates' weights join each strain's bias inside the kernel), and a view's summaries
come from it at the view's condition. So a request whose strains are all at different
temperatures costs about as much as one at a single temperature, and a strain's answer
does not depend on the other conditions asked with it. Beyond the tested range of a
covariate each draw's mean curve is scaled by its level factor
(`service.inference.conditions.level_factors`): `network_outputs` multiplies by it, a
view folds it into its mean head, and strains beyond the range in a request that gives
each strain its condition are answered by their condition's view, or by the float64
reference where a condition has only a few strains (`_beyond_range`).

Why one module of this size: the summaries, the draws' forward pass and the view at a
condition share the normalisation and the draw arrays; split, each half would re-derive them.
The level factors beyond the tested range scale those same draws in each of the three
(forward pass, view, which path answers a far strain), so they live beside them; their
arithmetic that needs no network (`level_factors`, the scores) is in conditions.py.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.artifact import Artifact, layer_names
from service.inference import interrupt, kernel
from service.inference.conditions import (
    Conditions,
    decorrelated_scores,
    distinct,
    level_factors,
    normal_scores,
)
from service.inference.curves import CurveModel
from service.manifest import Manifest

# Bound on draws x points x width floats held at once by the reference forward pass, so
# a large batch costs time, not gigabytes.
_MAX_ACTIVATION_ELEMENTS = 4_000_000
# Work of the numpy forward pass per strain, posterior draw and network unit
# (kernel.network_units), in nanoseconds on the reference machine (docs/performance.md):
# one core, float64, temporaries; benchmarks/admission.py measures it.
NUMPY_NS_PER_UNIT = 0.7
# Hidden activations (draws x strains x width) per block of the forward pass: about 2 MB,
# so a block stays in cache (2-3x faster than whole chunks for thousands of strains).
_BLOCK_ELEMENTS = 262_144
# Strain-only views of a covariate model kept per version: a few conditions are asked
# again and again (a solver at its temperatures); each view holds one copy of the
# first layer and the kernel's packed parameters (draws x parameters floats).
VIEW_CACHE_SIZE = 64
# Strains beyond the tested range at one condition from which that condition's view
# answers them (its kernel) rather than the float64 reference: building a view costs
# about what the reference spends on 3 strains (docs/covariates.md, "Cost").
VIEW_FROM_STRAINS = 4
# Strains over the training domain at which a draw's level (RMS of its mean curve) is
# taken for the level factors' scores.
_LEVEL_STRAINS = 41

Weights = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Prediction:
    mean: np.ndarray
    aleatoric_sd: np.ndarray
    epistemic_sd: np.ndarray
    # Only when asked (tangent=True): d mean/d strain and its SD over draws.
    tangent: np.ndarray | None = None
    tangent_epistemic_sd: np.ndarray | None = None

    @property
    def total_sd(self) -> np.ndarray:
        return np.hypot(self.aleatoric_sd, self.epistemic_sd)


def _merged(size: int, parts: list[tuple[np.ndarray, Prediction]]) -> Prediction:
    """One prediction of `size` strains from predictions of some of its rows each."""
    out: dict[str, np.ndarray] = {}
    for rows, part in parts:
        for key, value in vars(part).items():
            if value is not None:
                out.setdefault(key, np.empty(size))[rows] = value
    return Prediction(**out)


def noise_link(z: np.ndarray, link: str) -> np.ndarray:
    """Map the sigma head's output to a positive standard deviation."""
    if link == "exp":
        return np.exp(z)
    if link == "softplus":
        return np.logaddexp(0.0, z)
    raise ValueError(f"unknown noise link {link!r}")


class Posterior:
    """A loaded, immutable model version that answers predictive queries."""

    def __init__(self, artifact: Artifact) -> None:
        spec = artifact.spec  # validated: every field below is present and typed
        names = layer_names(len(spec.architecture.hidden_sizes))
        weights = [(artifact.arrays[f"{n}.W"], artifact.arrays[f"{n}.b"]) for n in names]
        # The material random effect over strain (service.inference.curves); None for
        # models fitted without groups and for artifacts older than it.
        curve = CurveModel.of(spec)
        self._setup(spec, weights, curve, None)

    def _setup(self, spec: Manifest, weights: Weights, curve: CurveModel | None,
               condition: tuple[float, ...] | None,
               bound_kernel: kernel.Kernel | None = None) -> None:
        """`bound_kernel`: a view's summary kernel, the model's own at the view's condition
        (none is built then)."""
        self.spec = spec  # names and units of the data, for exports
        self.draws = spec.inference.draws
        hidden_sizes = list(spec.architecture.hidden_sizes)
        self.weights = weights
        self.noise_link = spec.architecture.noise_link
        norm = spec.normalisation
        self.x_mean, self.x_scale = norm.x_mean, norm.x_scale
        self.y_mean, self.y_scale = norm.y_mean, norm.y_scale
        self.max_width = max(w.shape[2] for w, _ in self.weights)
        input_dim = weights[0][0].shape[1]
        # size per strain and draw (a strain at its own condition: its covariates' weights)
        self.units = kernel.network_units(hidden_sizes, input_dim - 1 if bound_kernel is None
                                          else bound_kernel.covariates)
        self.domain = (spec.training_domain.min, spec.training_domain.max)
        self.curve = curve
        # A view answers at one condition (physical units) and takes the strain alone;
        # the model itself (condition None) takes covariates when it has them.
        self.condition = condition
        self.conditions: Conditions | None = (
            Conditions.from_spec(spec) if condition is None else None)
        # Each draw's score in the level factors beyond the tested range (set below for
        # a model that has that term; views take their model's factors).
        self.level_scores: np.ndarray | None = None
        self._views: OrderedDict[tuple[float, ...], Posterior] = OrderedDict()
        self._views_lock = threading.Lock()
        # `kernel` takes the strain alone (a model without covariates, or a view);
        # `condition_kernel` (a model with covariates) takes each strain's condition too.
        self.kernel: kernel.Kernel | None = None
        self.condition_kernel: kernel.Kernel | None = None
        if bound_kernel is not None:
            self.kernel = bound_kernel
        elif kernel.supports(hidden_sizes, spec.architecture.activation, self.noise_link,
                           input_dim):
            built = kernel.Kernel(self.weights, self.noise_link, self.x_mean, self.x_scale,
                                  self.y_mean, self.y_scale)
            if input_dim == 1:
                self.kernel = built
            else:
                self.condition_kernel = built
            if condition is None:
                # Warm-up at load: the first request finds the packed weights in cache and
                # the compiled code (compiled when service.inference.kernel was imported)
                # already exercised.
                built.summaries(np.zeros(1), tangent=True, covariates=None if input_dim == 1
                                else np.zeros((1, input_dim - 1)))

        if self.conditions is not None and self.conditions.level_change is not None:
            self.level_scores = self._beyond_range_scores()

    def described_by(self, spec: Manifest) -> Posterior:
        """This posterior under a later manifest of the same network - training adds the
        curve model, the metrics and the report after the network exists - sharing its
        weights and warmed kernel: nothing is validated, packed or compiled again, and
        only the curve model is read from `spec`. ValueError if `spec` describes another
        network."""
        network = ("architecture", "normalisation", "training_domain", "covariates",
                   "tested_conditions", "tested_strain_ranges")
        if (any(getattr(spec, part) != getattr(self.spec, part) for part in network)
                or spec.inference.draws != self.draws):
            raise ValueError("the manifest describes another network than this posterior's")
        described = copy.copy(self)
        described.spec = spec
        described.curve = CurveModel.of(spec)
        # Views hold the curve model too: the described posterior builds its own.
        described._views = OrderedDict()
        described._views_lock = threading.Lock()
        return described

    # --- covariates ------------------------------------------------------------------

    def at(self, condition: Sequence[float] | np.ndarray) -> Posterior:
        """The strain-only view of this covariate model at one condition (covariate values
        in the manifest's order, physical units)."""
        if self.conditions is None:
            raise ValueError("this model takes no covariates")
        key = tuple(float(v) for v in np.asarray(condition, dtype=np.float64).ravel())
        if len(key) != self.conditions.count:
            raise ValueError(f"a condition has {self.conditions.count} values "
                             f"({', '.join(self.conditions.names)}), got {len(key)}")
        with self._views_lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
                return view
        view = self._make_view(key)
        with self._views_lock:
            self._views[key] = view
            while len(self._views) > VIEW_CACHE_SIZE:
                self._views.popitem(last=False)
        return view

    def _make_view(self, condition: tuple[float, ...]) -> Posterior:
        assert self.conditions is not None
        c_norm = self.conditions.normalise(np.array(condition))
        (w_first, b_first), *rest = self.weights
        # The covariates' part of the first layer's pre-activation is constant at one
        # condition: fold it into the bias, keep the strain's column.
        bias = b_first + np.einsum("j,sjw->sw", c_norm, w_first[:, 1:, :])
        weights = [(np.ascontiguousarray(w_first[:, :1, :]), bias), *rest]
        bound = (None if self.condition_kernel is None
                 else self.condition_kernel.at_condition(c_norm))
        beyond = float(self.conditions.extrapolation_sd(np.array(condition))[0])
        if beyond > 0:
            # Beyond the tested range each draw's mean curve is scaled by its level
            # factor (service.inference.conditions): fold it into the mean head, and let
            # the view pack its own kernel from these weights.
            assert self.level_scores is not None
            weights[-2] = self._scaled_mean_head(weights[-2], level_factors(
                np.array([beyond]), self.level_scores)[:, 0])
            bound = None
        view = Posterior.__new__(Posterior)
        # Its summaries from the model's own kernel at this condition: the same bits as a
        # request that sends the condition with each strain.
        view._setup(self.spec, weights, self.curve, condition, bound)
        return view

    def _scaled_mean_head(self, head: tuple[np.ndarray, np.ndarray], factors: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """The mean head whose physical output is draw s's times factors[s]: with
        mu = y_mean + y_scale * out, f * mu = y_mean + y_scale * (f * out + (f - 1) *
        y_mean / y_scale)."""
        w_mean, b_mean = head
        return (w_mean * factors[:, None, None],
                b_mean * factors[:, None] + (factors[:, None] - 1.0) * self.y_mean
                / self.y_scale)

    def _level_factors(self, values: np.ndarray | None, draws: np.ndarray | None
                       ) -> np.ndarray | None:
        """(draws, n) factors of each draw's mean curve at each row's condition, or None
        where every row lies inside the tested range (nothing to scale)."""
        if values is None or self.conditions is None or self.level_scores is None:
            return None
        beyond = self.conditions.extrapolation_sd(values)
        if not np.any(beyond > 0):
            return None
        factors = level_factors(beyond, self.level_scores)
        return factors if draws is None else factors[draws]

    def _beyond_range_scores(self) -> np.ndarray:
        """The draws' scores for the level factors: normal scores made uncorrelated with
        the draws' own log levels half a range width beyond each end of each covariate's
        range (the other covariates at the central tested condition), where the draws
        spread most; so the factors' variance adds to theirs instead of cancelling it."""
        conditions = self.conditions
        assert conditions is not None and conditions.level_change is not None
        strain = np.linspace(*self.domain, _LEVEL_STRAINS)
        central = conditions.central()
        low, high = conditions.transformed(conditions.low), conditions.transformed(conditions.high)
        spreads = []
        for j in np.flatnonzero((conditions.level_change > 0) & (high > low)):
            half = (high[j] - low[j]) / 2
            for read in (low[j] - half, high[j] + half):
                condition = central.copy()
                condition[j] = np.exp(read) if conditions.log[j] else read
                mu, _, _ = self._network_outputs(
                    strain, covariates=np.tile(condition, (strain.size, 1)))
                level = np.sqrt(np.mean(mu * mu, axis=1))
                spreads.append(np.log(np.maximum(level, 1e-300)))
        return decorrelated_scores(normal_scores(self.draws), np.array(spreads))

    def _check_covariates(self, strain: np.ndarray, covariates: np.ndarray | None
                          ) -> np.ndarray | None:
        """Covariates as an (n, k) float array; ValueError when they do not fit the model."""
        if self.conditions is None:
            if covariates is not None:
                raise ValueError("this model takes no covariates")
            return None
        if covariates is None:
            raise ValueError(f"this model needs covariates: {', '.join(self.conditions.names)}")
        values = np.asarray(covariates, dtype=np.float64)
        if values.shape != (strain.size, self.conditions.count):
            raise ValueError(f"covariates must have shape ({strain.size}, "
                             f"{self.conditions.count}), got {values.shape}")
        return values

    def network_outputs(
        self, strain: np.ndarray, with_tangent: bool = False,
        covariates: np.ndarray | None = None, draws: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """mu_s(x), sigma_s(x) and (optionally) d mu_s/dx for every draw and strain, each of
        shape (draws, n), in physical units. A model with covariates needs them: an (n, k)
        array of physical values, one row per strain. `draws` (indices) evaluates only
        those draws, in that order: a few sampled curves need a few draws, not all.

        Beyond the tested range of a covariate each draw's mean (and its tangent) is
        multiplied by the draw's level factor there (`_level_factors`)."""
        values = None if covariates is None else self._check_covariates(
            np.asarray(strain).ravel(), covariates)
        mu, sigma, d_mu = self._network_outputs(strain, with_tangent, values, draws)
        factors = self._level_factors(values, draws)
        if factors is not None:
            mu *= factors
            if d_mu is not None:
                d_mu *= factors
        return mu, sigma, d_mu

    def _network_outputs(
        self, strain: np.ndarray, with_tangent: bool = False,
        covariates: np.ndarray | None = None, draws: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The network's own outputs (no level factors), as `network_outputs`.

        The strain's part of the first layer is a broadcast product rather than a batched
        matrix product, and strains go through in blocks sized for the cache."""
        x = (np.asarray(strain, dtype=np.float64).ravel() - self.x_mean) / self.x_scale
        values = self._check_covariates(x, covariates)
        c_norm = None
        if values is not None:
            assert self.conditions is not None
            c_norm = self.conditions.normalise(values)
        weights = self.weights if draws is None else [(w[draws], b[draws])
                                                      for w, b in self.weights]
        count = self.draws if draws is None else len(draws)
        (w_first, b_first), *rest = weights
        *trunk, (w_mean, b_mean), (w_sigma, b_sigma) = rest
        mu = np.empty((count, x.size))
        z = np.empty((count, x.size))
        d_mu = np.empty((count, x.size)) if with_tangent else None
        step = max(1, _BLOCK_ELEMENTS // (max(count, 1) * self.max_width))
        for start in range(0, x.size, step):
            part = slice(start, start + step)
            first = w_first[:, 0, None, :]
            pre = x[None, part, None] * first + b_first[:, None, :]
            if c_norm is not None:
                pre = pre + c_norm[part] @ w_first[:, 1:, :]
            hidden = np.tanh(pre)
            # Forward-mode derivative of the hidden state with respect to normalised x.
            d_hidden = (1.0 - hidden * hidden) * first if with_tangent else None
            for weight, bias in trunk:
                hidden = np.tanh(hidden @ weight + bias[:, None, :])
                if d_hidden is not None:
                    d_hidden = (1.0 - hidden * hidden) * (d_hidden @ weight)
            mu[:, part] = (hidden @ w_mean)[..., 0] + b_mean
            z[:, part] = (hidden @ w_sigma)[..., 0] + b_sigma
            if d_mu is not None and d_hidden is not None:
                d_mu[:, part] = (d_hidden @ w_mean)[..., 0]
        if d_mu is not None:
            d_mu *= self.y_scale / self.x_scale
        return (self.y_mean + self.y_scale * mu,
                self.y_scale * noise_link(z, self.noise_link), d_mu)

    def predict(self, strain: np.ndarray, tangent: bool = False,
                covariates: np.ndarray | None = None) -> Prediction:
        """Mean, aleatoric SD, epistemic SD (and tangent) per strain, by the fast kernel
        (within 1e-3 x total SD of the reference; see service.inference.kernel). With
        covariates ((n, k), physical), by the condition kernel (views where the kernel
        does not apply)."""
        strain = np.asarray(strain, dtype=np.float64).ravel()
        values = self._check_covariates(strain, covariates)
        if values is not None and self.condition_kernel is not None:
            # Each strain at its own condition, in one pass: a strain's answer does not
            # depend on the other conditions in the request, nor on how many there are.
            assert self.conditions is not None
            by_view, few = self.far_split(values)
            if not by_view and few.size == 0:
                return Prediction(**self.condition_kernel.summaries(
                    strain, tangent, self.conditions.normalise(values)))
            return self._beyond_range(strain, values, by_view, few, tangent)
        if values is not None:
            return self._per_condition(strain, values, tangent)
        if self.kernel is None:
            return self.predict_reference(strain, tangent)
        return Prediction(**self.kernel.summaries(strain, tangent))

    def _beyond_range(self, strain: np.ndarray, values: np.ndarray,
                      by_view: list[np.ndarray], few: np.ndarray,
                      tangent: bool) -> Prediction:
        """Summaries where some strains lie beyond the tested range, whose level factors
        the condition kernel does not carry: by views and the reference as `far_split`
        said (`by_view`, `few`), the rest by the condition kernel."""
        assert self.conditions is not None and self.condition_kernel is not None
        parts = [(rows, self.at(values[rows[0]]).predict(strain[rows], tangent))
                 for rows in by_view]
        if few.size:
            parts.append((few, self.predict_reference(strain[few], tangent, values[few])))
        inside = np.ones(strain.size, dtype=bool)
        inside[few] = False
        for rows in by_view:
            inside[rows] = False
        near = np.flatnonzero(inside)
        if near.size:
            parts.append((near, Prediction(**self.condition_kernel.summaries(
                strain[near], tangent, self.conditions.normalise(values[near])))))
        return _merged(strain.size, parts)

    def far_split(self, values: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """How `predict` answers rows of per-strain conditions ((n, k), physical) that lie
        beyond the tested range of a model with the level term there: the rows of each
        far condition asked at `VIEW_FROM_STRAINS` strains or more go to its view (a view
        costs about what the reference spends on 3 strains, its kernel far less after
        that); the other far rows to the float64 reference. Nothing for rows inside."""
        if self.conditions is None or self.level_scores is None:
            return [], np.zeros(0, dtype=np.int64)
        far = np.flatnonzero(self.conditions.extrapolation_sd(values) > 0)
        if far.size == 0:
            return [], far
        unique, inverse = distinct(values[far])
        counts = np.bincount(inverse, minlength=unique.shape[0])
        by_view = [far[inverse == d] for d in np.flatnonzero(counts >= VIEW_FROM_STRAINS)]
        return by_view, far[counts[inverse] < VIEW_FROM_STRAINS]

    def _per_condition(self, strain: np.ndarray, values: np.ndarray,
                       tangent: bool) -> Prediction:
        unique, inverse = distinct(values)
        if unique.shape[0] == 1:
            return self.at(unique[0]).predict(strain, tangent)
        return _merged(strain.size, [
            (rows, self.at(condition).predict(strain[rows], tangent))
            for rows, condition in ((np.flatnonzero(inverse == index), condition)
                                    for index, condition in enumerate(unique))])

    def predict_reference(self, strain: np.ndarray, tangent: bool = False,
                          covariates: np.ndarray | None = None) -> Prediction:
        """The same summaries by the plain-numpy float64 reference, in bounded-memory
        chunks."""
        strain = np.asarray(strain, dtype=np.float64).ravel()
        values = self._check_covariates(strain, covariates)
        chunk = max(1, _MAX_ACTIVATION_ELEMENTS // (self.draws * self.max_width))
        out = {key: np.empty_like(strain) for key in
               ("mean", "aleatoric_sd", "epistemic_sd", "tangent", "tangent_epistemic_sd")}
        for start in range(0, strain.size, chunk):
            interrupt.checkpoint()
            part = slice(start, start + chunk)
            mu, sigma, d_mu = self.network_outputs(
                strain[part], with_tangent=tangent,
                covariates=None if values is None else values[part])
            out["mean"][part] = mu.mean(axis=0)
            # np.std subtracts the mean first: no cancellation for tiny epistemic spread.
            out["epistemic_sd"][part] = mu.std(axis=0)
            out["aleatoric_sd"][part] = np.sqrt(np.mean(sigma * sigma, axis=0))
            if d_mu is not None:
                out["tangent"][part] = d_mu.mean(axis=0)
                out["tangent_epistemic_sd"][part] = d_mu.std(axis=0)
        if not tangent:
            out["tangent"] = out["tangent_epistemic_sd"] = None
        return Prediction(**out)

    def outside_domain(self, strain: np.ndarray,
                       covariates: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask of strains outside the training domain (extrapolation); with
        covariates ((n, k), physical), also where any covariate leaves its training range
        or the strain leaves the range tested at the nearest tested condition."""
        low, high = self.domain
        outside = (strain < low) | (strain > high)
        if covariates is not None and self.conditions is not None:
            outside = (outside | self.conditions.outside(covariates)
                       | self.conditions.untested_strain(strain, covariates))
        return outside
