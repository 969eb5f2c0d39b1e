"""The served scatter is widened only where held-out materials show it too narrow
(training.widening): by the factor their log density asks for, never below 1, cross-fitted
figures beside it, and the fit otherwise unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import PredictiveDraws
from training.config import BNNConfig
from training.data import TrainingData, make_law_group
from training.pipeline import fit_data, fit_model, widened
from training.widening import HeldOutFold, best_factor, too_narrow, widening_section


def _folds(true_sd: float, answered_sd: float, folds: int = 4, materials: int = 10,
           points: int = 40, seed: int = 0, shared: float = 0.0) -> list[HeldOutFold]:
    """Materials whose rows scatter by `true_sd` around 0 (a `shared` share of the
    variance a shift of the whole material), answered with `answered_sd` by three draws
    of one fit per fold."""
    rng = np.random.default_rng(seed)
    made = []
    for k in range(folds):
        units = np.repeat([f"f{k}m{m}" for m in range(materials)], points)
        shift = np.repeat(rng.normal(0.0, 1.0, materials), points)
        y = true_sd * (np.sqrt(shared) * shift
                       + np.sqrt(1 - shared) * rng.normal(0.0, 1.0, units.size))
        draws = PredictiveDraws(np.zeros((3, units.size)), np.full((3, units.size), answered_sd))
        made.append(HeldOutFold(y, draws, units))
    return made


def test_an_answer_half_as_wide_as_the_scatter_is_widened_about_twice() -> None:
    folds = _folds(true_sd=2.0, answered_sd=1.0)
    assert too_narrow(folds)
    assert best_factor(folds) == pytest.approx(2.0, rel=0.05)
    section = widening_section(folds, y_scale=1.0)
    assert section["applied"] and section["factor"] == pytest.approx(2.0, rel=0.05)
    assert section["held_out_before"]["coverage"]["0.95"] < 0.75
    after = section["held_out_after"]
    assert len(after["fold_factors"]) == 4  # each fold scored by the other folds' factor
    assert 0.92 < after["coverage"]["0.95"] < 0.98
    assert after["nlpd"] < section["held_out_before"]["nlpd"]  # so the factor is taken


def test_a_calibrated_or_too_wide_answer_is_left_alone() -> None:
    for answered in (2.0, 4.0):
        folds = _folds(true_sd=2.0, answered_sd=answered)
        assert not too_narrow(folds) and best_factor(folds) == 1.0
        section = widening_section(folds, y_scale=1.0)
        assert not section["applied"] and "held_out_after" not in section


def test_one_fold_cannot_check_its_factor_and_is_not_widened() -> None:
    section = widening_section(_folds(true_sd=2.0, answered_sd=1.0, folds=1), y_scale=None)
    assert section["asked_factor"] == pytest.approx(2.0, rel=0.05)
    assert not section["applied"] and section["factor"] == 1.0
    assert "held_out_after" not in section
    assert "nlpd_standardised" not in section["held_out_before"]


def test_a_factor_the_other_folds_do_not_confirm_is_not_taken() -> None:
    """One fold of materials far outside its band, three well covered: the pooled folds
    ask for a wider band, but each fold scored with the factor the others ask for (1 for
    the odd fold, wide for the good ones) scores worse, so nothing is widened."""
    good = _folds(true_sd=1.0, answered_sd=1.0, folds=3, seed=5)
    odd = _folds(true_sd=3.0, answered_sd=1.0, folds=1, seed=6)
    folds = good + odd
    section = widening_section(folds, y_scale=None)
    assert too_narrow(folds) and section["asked_factor"] > 1.2
    after = section["held_out_after"]
    assert after["fold_factors"][3] == 1.0 and min(after["fold_factors"][:3]) > 1.2
    assert after["nlpd"] > section["held_out_before"]["nlpd"]
    assert not section["applied"] and section["factor"] == 1.0


def test_the_evidence_is_counted_in_materials_not_rows() -> None:
    """Materials that each shift their whole curve: one of 3 outside the band leaves 69%
    of 3,000 rows covered, too few materials to call the answer too narrow; 40 materials
    over as many rows are enough."""
    few = _folds(true_sd=1.6, answered_sd=1.0, folds=1, materials=3, points=1000, seed=4,
                 shared=0.9)
    many = _folds(true_sd=1.6, answered_sd=1.0, folds=1, materials=40, points=75, seed=4,
                  shared=0.9)
    for folds in (few, many):  # both answered too narrowly, as far as rows go
        fold = folds[0]
        assert np.mean(np.abs(fold.y / 1.0) <= 1.96) < 0.9
    assert not too_narrow(few)
    assert too_narrow(many)


FEW_SPECIMENS = make_law_group("gent", materials=4, points=30, seed=3, noise_sd=0.005)
CONFIG = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=3,
                                    map_max_iterations=300)


def test_a_group_of_few_materials_is_served_wider_and_otherwise_unchanged() -> None:
    """Four Gent materials: the held-out ones fall outside the fold fits' bands, and the
    served fit is the fit on all of them with every draw's sigma times the factor."""
    data = TrainingData(FEW_SPECIMENS["strain"].to_numpy(), FEW_SPECIMENS["stress"].to_numpy(),
                        FEW_SPECIMENS["material"].to_numpy(), "strain", "stress", "-",
                        len(FEW_SPECIMENS))
    trained = fit_data(data, CONFIG, folds=3, parallel=False)
    section = trained.artifact.spec.metrics["scatter_widening"]
    assert section["applied"] and section["factor"] > 1.2
    alone = fit_model(data, CONFIG)  # the served fit, before widening: the same seed
    for name, array in alone.artifact.arrays.items():
        expected = array + np.log(section["factor"]) if name == "sigma_head.b" else array
        np.testing.assert_allclose(trained.artifact.arrays[name], expected, rtol=1e-12)
    strain = np.linspace(0.6, 1.4, 7)
    served, before = trained.posterior.predict(strain), alone.posterior.predict(strain)
    np.testing.assert_allclose(served.mean, before.mean, rtol=1e-12)
    # The served kernel's exp is accurate to single-precision-like rounding, not to the last bit.
    np.testing.assert_allclose(served.aleatoric_sd, section["factor"] * before.aleatoric_sd,
                               rtol=1e-6)
    assert widened(alone, 1.0) is alone
