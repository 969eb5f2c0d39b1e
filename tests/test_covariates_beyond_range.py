"""Beyond a covariate's tested range the level of the mean curve carries its own
uncertainty (service.inference.conditions, "Beyond the range"): the manifest's field, the
per-draw level factors, every way the posterior answers there, and the fit's measure of
the trend (training.level_trend)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from service.inference import predictive
from service.inference.conditions import (
    Conditions,
    decorrelated_scores,
    level_factors,
    normal_scores,
)
from service.inference.posterior import Posterior
from service.manifest import (
    EXTRAPOLATION_SCHEMA_VERSION,
    LOG_COVARIATES_SCHEMA_VERSION,
    ManifestError,
    parse_manifest,
)
from tests.service_process import random_artifact, with_level_changes
from tests.test_covariates import assert_kernel_agrees
from training.level_trend import LEVEL_CHANGE_FLOOR, log_level_changes

STRAIN = np.linspace(-0.5, 0.5, 21)
INSIDE = [300.0, 0.05]  # temperature 273.15-353.15 K, rate 0.001-0.1 /s
# Half the temperature range above it: 0.5 range widths beyond.
ABOVE = [353.15 + 40.0, 0.05]
CHANGES = [0.8, 0.0]  # ln(level) across each range: temperature, rate


@pytest.fixture(scope="module")
def pair() -> tuple[Posterior, Posterior]:
    """The same random network without and with the term beyond the range."""
    artifact = random_artifact(draws=40, hidden_sizes=(8,), seed=5, covariates=2)
    return Posterior(artifact), Posterior(with_level_changes(artifact, CHANGES))


# --- the manifest -------------------------------------------------------------------

@pytest.mark.parametrize(("version", "change", "message"), [
    (1, 0.5, "needs schema_version 3"),
    (LOG_COVARIATES_SCHEMA_VERSION, 0.5, "needs schema_version 3"),
    (EXTRAPOLATION_SCHEMA_VERSION, -0.1, "covariates[0].log_level_change"),
    (EXTRAPOLATION_SCHEMA_VERSION, float("nan"), "covariates[0].log_level_change"),
])
def test_the_manifest_field_needs_its_version_and_a_finite_non_negative_value(
        version, change, message) -> None:
    manifest = copy.deepcopy(random_artifact(covariates=2).manifest)
    manifest["schema_version"] = version
    manifest["covariates"][0]["log_level_change"] = change
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest)
    assert message in str(caught.value)


# --- the factors --------------------------------------------------------------------

def test_the_level_factors_have_mean_one_and_the_asked_spread_of_their_log() -> None:
    z = normal_scores(16)
    assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std() == pytest.approx(1.0)
    assert np.array_equal(z, normal_scores(16))  # a fixed order: answers are repeatable
    assert not np.all(np.diff(z) > 0)  # not in draw order (draws are chain-major)
    factors = level_factors(np.array([0.0, 0.1, 0.5]), z)
    assert factors.shape == (16, 3)
    np.testing.assert_allclose(factors.mean(axis=0), 1.0, rtol=1e-12)
    assert np.all(factors[:, 0] == 1.0)
    logs = np.log(factors)
    np.testing.assert_allclose(logs.std(axis=0)[1:], [0.1, 0.5], rtol=1e-12)


def test_scores_are_made_uncorrelated_with_the_draws_own_spread() -> None:
    rng = np.random.default_rng(0)
    spreads = rng.normal(size=(3, 16))
    z = decorrelated_scores(normal_scores(16), spreads)
    assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std() == pytest.approx(1.0)
    centred = spreads - spreads.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(centred @ z, 0.0, atol=1e-10)
    # More directions than draws allow: the strongest draws - 2 go, some spread stays.
    many = decorrelated_scores(normal_scores(6), rng.normal(size=(10, 6)))
    assert np.isfinite(many).all() and many.std() == pytest.approx(1.0)
    # Nothing to remove: the scores as they were.
    assert np.allclose(decorrelated_scores(normal_scores(8), np.zeros((2, 8))),
                       normal_scores(8))


def test_the_sd_is_zero_inside_every_range_and_grows_linearly_beyond() -> None:
    conditions = Conditions.from_spec(with_level_changes(
        random_artifact(covariates=2), CHANGES).spec)
    assert conditions is not None
    width = 353.15 - 273.15
    rows = np.array([INSIDE, [273.15, 0.001], [353.15, 0.1], [353.15 + width / 2, 0.05],
                     [273.15 - width, 0.05], [300.0, 1.0]])
    np.testing.assert_allclose(conditions.extrapolation_sd(rows),
                               [0.0, 0.0, 0.0, 0.4, 0.8, 0.0], atol=1e-12)
    # Two covariates beyond their ranges add in quadrature.
    both = Conditions.from_spec(with_level_changes(random_artifact(covariates=2),
                                                   [0.8, 0.6]).spec)
    rate_width = 0.1 - 0.001
    beyond = both.extrapolation_sd(np.array([[353.15 + width / 2, 0.1 + rate_width]]))
    assert beyond[0] == pytest.approx(np.hypot(0.4, 0.6))
    # A covariate read on a log scale is measured in decades of its range: 0.001-0.1/s
    # spans two, so 1/s lies half a range width above it.
    manifest = copy.deepcopy(with_level_changes(random_artifact(covariates=2),
                                                [0.0, 0.6]).manifest)
    manifest["covariates"][1]["transform"] = "log"
    on_log = Conditions.from_spec(parse_manifest(manifest))
    assert on_log.extrapolation_sd(np.array([[300.0, 1.0]]))[0] == pytest.approx(0.3)
    assert on_log.extrapolation_sd(np.array([[300.0, 1e-4]]))[0] == pytest.approx(0.3)
    # An artifact without the field has no such term.
    plain = Conditions.from_spec(random_artifact(covariates=2).spec)
    assert plain.level_change is None
    assert np.all(plain.extrapolation_sd(rows) == 0.0)


# --- the posterior ------------------------------------------------------------------

def test_inside_the_range_nothing_changes_bit_for_bit(pair) -> None:
    plain, extended = pair
    given = np.tile(INSIDE, (STRAIN.size, 1))
    for method in ("predict", "predict_reference"):
        a = getattr(plain, method)(STRAIN, tangent=True, covariates=given)
        b = getattr(extended, method)(STRAIN, tangent=True, covariates=given)
        for field in ("mean", "aleatoric_sd", "epistemic_sd", "tangent",
                      "tangent_epistemic_sd"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), (method, field)
    assert np.array_equal(plain.at(INSIDE).network_outputs(STRAIN)[0],
                          extended.at(INSIDE).network_outputs(STRAIN)[0])


def test_beyond_the_range_each_draw_is_scaled_by_its_level_factor(pair) -> None:
    plain, extended = pair
    given = np.tile(ABOVE, (STRAIN.size, 1))
    mu, sigma, slope = plain.network_outputs(STRAIN, with_tangent=True, covariates=given)
    factors = level_factors(np.array([0.4]), extended.level_scores)
    mu_e, sigma_e, slope_e = extended.network_outputs(STRAIN, with_tangent=True,
                                                      covariates=given)
    np.testing.assert_allclose(mu_e, factors * mu, rtol=1e-12)
    np.testing.assert_allclose(slope_e, factors * slope, rtol=1e-12)
    assert np.array_equal(sigma_e, sigma)  # the scatter is not scaled
    # The view folds the factors into its mean head: the same draws.
    view = extended.at(ABOVE)
    mu_v, sigma_v, slope_v = view.network_outputs(STRAIN, with_tangent=True)
    np.testing.assert_allclose(mu_v, mu_e, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(slope_v, slope_e, rtol=1e-9, atol=1e-10)
    # Summaries: the kernel (the view's own) against the float64 reference, and the
    # epistemic SD well above the network's alone.
    reference = extended.predict_reference(STRAIN, tangent=True, covariates=given)
    assert_kernel_agrees(extended.predict(STRAIN, tangent=True, covariates=given), reference)
    np.testing.assert_allclose(reference.epistemic_sd, mu_e.std(axis=0), rtol=1e-12)
    # The variances add on average over strains (at one strain the factors and the
    # draws' own spread may correlate either way: 40 draws, one set of factors).
    alone = plain.predict_reference(STRAIN, covariates=given)
    added = np.mean(reference.epistemic_sd ** 2) - np.mean(alone.epistemic_sd ** 2)
    level_term = np.mean(factors.var() * (alone.mean ** 2 + alone.epistemic_sd ** 2))
    assert 0.5 * level_term < added < 1.5 * level_term


def test_a_request_across_the_range_answers_each_strain_as_alone(pair) -> None:
    _, extended = pair
    conditions = np.array([INSIDE, ABOVE, INSIDE, [273.15 - 40.0, 0.01], ABOVE])
    strain = np.array([-0.3, 0.0, 0.2, 0.4, 0.1])
    together = extended.predict(strain, tangent=True, covariates=conditions)
    for i in range(strain.size):
        alone = extended.predict(strain[i:i + 1], tangent=True,
                                 covariates=conditions[i:i + 1])
        # Inside the range the kernel's bits; beyond it the float64 reference's, whose
        # vectorised tanh may round the last bit differently for another batch size.
        for field in ("mean", "epistemic_sd", "tangent_epistemic_sd"):
            assert getattr(together, field)[i] == pytest.approx(
                getattr(alone, field)[0], rel=1e-13, abs=1e-15), (i, field)
            if i in (0, 2):
                assert getattr(together, field)[i] == getattr(alone, field)[0], (i, field)


def test_a_far_condition_asked_at_several_strains_is_answered_by_its_view(pair) -> None:
    from service.inference.posterior import VIEW_FROM_STRAINS

    _, extended = pair
    count = VIEW_FROM_STRAINS
    strain = np.linspace(-0.4, 0.4, count + 2)
    conditions = np.array([ABOVE] * count + [[273.15 - 40.0, 0.01], INSIDE])
    together = extended.predict(strain, covariates=conditions)
    view = extended.at(ABOVE).predict(strain[:count])
    assert np.array_equal(together.mean[:count], view.mean)  # the view's kernel, its bits
    assert np.array_equal(together.epistemic_sd[:count], view.epistemic_sd)
    # The lone far strain: the float64 reference.
    alone = extended.predict_reference(strain[count:count + 1],
                                       covariates=conditions[count:count + 1])
    assert together.epistemic_sd[count] == pytest.approx(alone.epistemic_sd[0], rel=1e-13)
    # Both agree with the reference to float32 rounding.
    reference = extended.predict_reference(strain, covariates=conditions)
    np.testing.assert_allclose(together.epistemic_sd, reference.epistemic_sd, rtol=1e-4)


def test_quantiles_and_samples_carry_the_factors(pair) -> None:
    plain, extended = pair
    levels = [0.025, 0.975]
    width = np.diff(predictive.quantiles(extended.at(ABOVE), STRAIN, levels), axis=0)
    narrow = np.diff(predictive.quantiles(plain.at(ABOVE), STRAIN, levels), axis=0)
    assert width.mean() > 1.02 * narrow.mean()  # the band widens where the level is large
    reference = np.diff(predictive.quantiles_reference(extended.at(ABOVE), STRAIN, levels),
                        axis=0)
    np.testing.assert_allclose(width, reference, rtol=1e-4, atol=1e-6)
    curves = predictive.samples(extended.at(ABOVE), STRAIN, 4000, seed=1, test_noise=False)
    # Without test noise a sample is one draw's mean curve: its spread is the epistemic SD.
    epistemic = extended.at(ABOVE).predict_reference(STRAIN).epistemic_sd
    np.testing.assert_allclose(curves.std(axis=1), epistemic, rtol=0.1, atol=1e-9)


# --- the fit's measure of the trend ---------------------------------------------------

class _Trend:
    """A posterior whose mean curve at a condition is level(condition) * strain."""

    def __init__(self, level) -> None:
        self.conditions = Conditions.from_spec(random_artifact(covariates=2).spec)
        self.domain = (-0.5, 0.5)
        self._level = level

    def at(self, condition):
        level = self._level(np.asarray(condition))
        return SimpleNamespace(predict=lambda strain: SimpleNamespace(mean=level * strain))


def test_the_level_change_is_the_total_variation_of_the_log_level() -> None:
    # Level as the cube of the temperature; the rate does nothing, which is not taken as
    # knowing that it does nothing beyond its range: it gets the floor.
    changes = log_level_changes(_Trend(lambda c: (c[0] / 273.15) ** 3))
    assert changes == pytest.approx([3 * np.log(353.15 / 273.15), LEVEL_CHANGE_FLOOR],
                                    abs=1e-12)
    # Entropic: level proportional to the temperature, a change of 0.257 nats: the floor.
    assert log_level_changes(_Trend(lambda c: c[0] / 273.15))[0] == LEVEL_CHANGE_FLOOR
    # A level that rises then falls across the range counts both ways.
    peaked = log_level_changes(_Trend(lambda c: np.exp(-((c[0] - 313.15) / 40.0) ** 2)))
    assert peaked[0] == pytest.approx(2.0, rel=1e-12)  # ln level: -1 up to 0, back to -1


# --- admission ----------------------------------------------------------------------

def test_strains_the_reference_answers_are_admitted_at_its_cost(pair) -> None:
    from service.inference.posterior import VIEW_FROM_STRAINS
    from service.prediction import admission
    from service.prediction.conditions import request_reference_share
    from service.prediction.request import PredictRequest

    plain, extended = pair
    strain = [0.1, 0.2, 0.3, 0.4]
    sweep = PredictRequest(strain=strain, covariates={
        "temperature": [300.0, 400.0, 410.0, 420.0], "rate": 0.05})
    inside = PredictRequest(strain=strain, covariates={
        "temperature": [300.0, 310.0, 320.0, 330.0], "rate": 0.05})
    # One far condition for all strains is answered by its view, on the compiled kernel.
    single = PredictRequest(strain=strain, covariates={"temperature": 400.0, "rate": 0.05})
    unknown = PredictRequest(strain=strain, covariates={"pressure": [1e9] * 4})
    assert request_reference_share(sweep, extended) == 0.75
    assert request_reference_share(sweep, plain) == 0.0  # no level term: the kernel
    assert request_reference_share(inside, extended) == 0.0
    assert VIEW_FROM_STRAINS <= 4 and request_reference_share(single, extended) == 0.0
    assert request_reference_share(unknown, extended) == 0.0  # refused later, with a 422
    compiled = admission.predict_estimate(extended, 10_000).seconds
    reference = admission.predict_estimate(extended, 10_000, reference_share=1.0).seconds
    half = admission.predict_estimate(extended, 10_000, reference_share=0.5).seconds
    assert reference > 5 * compiled and half == pytest.approx((compiled + reference) / 2)
    oip = admission.oip_estimate(extended, 10_000, 3, False, reference_share=1.0).seconds
    assert oip > 5 * admission.oip_estimate(extended, 10_000, 3, False).seconds
