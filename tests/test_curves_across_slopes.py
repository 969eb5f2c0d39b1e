"""A material's effect linear in the covariates (curve_model.condition_slope_scales and
condition_slope_centre): the Gaussian conditional by brute force, sampled materials
correlating by R (negatively across the centre), the manifest's checks, and the fit
choosing the law for materials that cross over."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from service.inference import curves_across
from service.inference.curves import CurveModel
from service.inference.posterior import Posterior
from service.manifest import CurveModelSection, Manifest
from tests.service_process import smooth_curve_section
from tests.test_curves_across import RHO, across_artifact, assert_the_gaussian_conditional
from training.condition_correlation import MIN_MATERIALS_FOR_LAW_CHOICE, fit_condition_law

SCALE, CENTRE = 15.0, 300.0


def slope_posterior(identical_draws: bool = False) -> Posterior:
    artifact = across_artifact(identical_draws)
    artifact.manifest["curve_model"]["condition_slope_scales"] = [SCALE]
    artifact.manifest["curve_model"]["condition_slope_centre"] = [CENTRE]
    return Posterior(artifact)


def slope_r(where: np.ndarray, rho: float) -> np.ndarray:
    s = (where - CENTRE) / SCALE
    cov = 1.0 + np.outer(s, s)
    r = rho * cov / np.sqrt(np.outer(1.0 + s * s, 1.0 + s * s))
    return np.where(where[:, None] == where[None, :], 1.0, r)


@pytest.mark.parametrize("condition", [[273.15], [296.15], [340.0]])
def test_slope_conditioning_is_the_gaussian_conditional(condition: list[float]) -> None:
    assert_the_gaussian_conditional(slope_posterior(), condition,
                                    lambda a, where: (a @ a.T) * slope_r(where, RHO))


def test_sampled_materials_correlate_by_r_negatively_across_the_centre() -> None:
    posterior = slope_posterior(identical_draws=True)
    curve = posterior.curve
    assert curve is not None
    strain = np.array([0.3, 0.3, 0.3])
    conditions = np.array([[273.15], [296.15], [353.15]])
    state = curves_across.prior(curve, 1.0, posterior.draws)
    samples = curves_across.curve_samples_across(posterior, curve, state, strain, conditions,
                                                 20_000, seed=3, test_noise=False)
    mu = [posterior.at(c).network_outputs(strain[:1])[0][0, 0] for c in conditions]
    expected = slope_r(conditions[:, 0], 1.0)
    assert expected[0, 2] < -0.5  # 1.8 and 3.5 scales either side of the centre
    for i, j in ((0, 1), (0, 2), (1, 2)):
        seen = np.corrcoef(samples[i] - mu[i], samples[j] - mu[j])[0, 1]
        assert abs(seen - expected[i, j]) < 0.03, (i, j, seen, expected[i, j])


def test_the_manifest_wants_both_slope_fields_one_per_covariate_and_one_law() -> None:
    manifest = across_artifact().manifest
    curve = manifest["curve_model"]
    curve["condition_slope_scales"] = [SCALE]
    with pytest.raises(ValidationError, match="condition_slope_centre"):
        Manifest.model_validate(manifest)
    curve["condition_slope_centre"] = [CENTRE, 1.0]
    with pytest.raises(ValidationError, match="condition_slope_centre has 2 values"):
        Manifest.model_validate(manifest)
    curve["condition_slope_centre"] = [CENTRE]
    assert Manifest.model_validate(manifest).curve_model is not None
    curve["condition_length_scales"] = [20.0]
    with pytest.raises(ValidationError, match="do not come together"):
        Manifest.model_validate(manifest)


def crossing_curves(section: dict, materials: int, seed: int, coordinates: np.ndarray
                    ) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """z curves of materials whose effect is w_0 + s(c) w_1 (a random slope): the
    model's own law with rho0 1, centre 0 and scale 0.7 in standardised units."""
    curve = CurveModel.from_section(CurveModelSection.model_validate(section))
    strain = np.linspace(-0.5, 0.5, 15)
    a = curve.loadings(strain)
    noise = np.sqrt(np.maximum(1.0 - np.sum(a * a, axis=1), 0.0))
    slope = coordinates[:, 0] / 0.7
    rng = np.random.default_rng(seed)
    out = []
    for material in range(materials):
        w0, w1 = rng.standard_normal((2, a.shape[1]))
        for condition, s in enumerate(slope):
            effect = (w0 + s * w1) / np.sqrt(1.0 + s * s)
            out.append((strain, a @ effect + noise * rng.standard_normal(strain.size),
                        material, condition))
    return out


def test_held_out_materials_choose_random_slopes_for_materials_that_cross_over() -> None:
    section = smooth_curve_section(basis=6, length=0.6, level=0.05)
    coordinates = np.linspace(-1.4, 1.4, 5)[:, None]
    law = fit_condition_law(crossing_curves(section, 40, 2, coordinates), section, 6,
                            coordinates)
    gains = law.summary["held_out_gain_over_one_rho_nats_per_point"]
    assert law.summary["law"] == "slopes", law.summary
    assert gains["slopes"] > max(gains["decaying"], gains["per component"], 0.0)
    assert law.slope_scales is not None and law.slope_centre is not None
    assert abs(law.slope_scales[0] - 0.7) < 0.25 and abs(law.slope_centre[0]) < 0.3
    assert law.rho > 0.85 and law.length_scale is None and law.rhos is None


def test_with_fewer_than_two_materials_per_fold_one_rho_is_kept() -> None:
    section = smooth_curve_section(basis=6, length=0.6, level=0.05)
    coordinates = np.linspace(-1.4, 1.4, 5)[:, None]
    few = MIN_MATERIALS_FOR_LAW_CHOICE - 1
    law = fit_condition_law(crossing_curves(section, few, 2, coordinates), section, 6,
                            coordinates)
    assert law.summary["law"] == "one rho" and law.summary["identified"]
    assert law.summary["materials_at_several_conditions"] == few
    assert law.length_scale is None and law.rhos is None and law.slope_scales is None
    assert "held_out_gain_over_one_rho_nats_per_point" not in law.summary
