"""Whole-curve table of benchmarks/quality.py (`--only curves`).

For each law of `make-data` (Mooney-Rivlin, Gent, Ogden): `materials` training materials
(seed 101) and 60 new held-out materials (seed 202), 50 strains each. Every row samples 200
curves per held-out material at its strains and is scored there (lower is better):
- chosen model: the default fit (Bayesian bootstrap by material + the spline copula);
- latent BNN: the other candidate (training.latent), same inference;
- independent: the chosen model's marginals, every strain sampled on its own;
- Schaake shuffle: the same independent samples reordered per strain to follow the rank
  order of the training materials' curves (a copula read off the training data);
- generating process: 200 fresh materials of the law itself.
skill = (S_independent - S_model) / (S_independent - S_generating) for the energy score
(ES) and the variogram score (VS, p = 0.5). Conditioning gain: nats per point of a
held-out material's other points given 3 of its points (training.curve_metrics).
Below each table: epistemic calibration (median over the training domain of epistemic SD
/ (population SD / sqrt(materials))), between/within-material SD errors against the law
(RMS error / RMS of the truth over the training domain), aleatoric errors, held-out 95%
coverage and NLPD next to NGBoost and the training materials' empirical Gaussian.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from service.inference.posterior import Posterior
from training import calibration, curve_metrics
from training.curves import residual_curves  # noqa: F401  (documents where z comes from)
from training.data import LAWS, TrainingData, law_curves, population_statistics
from training.latent import fit_latent
from training.model import BNNConfig
from training.pipeline import fit_data

CURVES = 200
HELD_OUT = 60


def _data(frame: Any) -> TrainingData:
    return TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame))


def schaake(independent: np.ndarray, template: np.ndarray, rng: np.random.Generator
            ) -> np.ndarray:
    """Reorder each column of `independent` (m, d) to the rank order of template rows
    (training curves, drawn with replacement when there are fewer than m)."""
    m = independent.shape[0]
    rows = template[rng.choice(template.shape[0], m, replace=template.shape[0] < m)]
    keys = rng.random(m)  # one tie-break per curve, the same at every strain
    out = np.empty_like(independent)
    for j in range(independent.shape[1]):
        out[np.lexsort((keys, rows[:, j])), j] = np.sort(independent[:, j])
    return out


def _relative_rms(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - truth) ** 2) / np.mean(truth**2)))


def law_table(law: str, materials: int, latent_members: int, held_out: int = HELD_OUT
              ) -> dict[str, Any]:
    train = _data(LAWS[law](materials=materials, points=50, seed=101))
    test = _data(LAWS[law](materials=held_out, points=50, seed=202))
    started = time.perf_counter()
    posterior = fit_data(train, BNNConfig(), holdout=0.0).posterior
    fit_seconds = time.perf_counter() - started
    curve = posterior.curve
    started = time.perf_counter()
    latent = fit_latent(train.x, train.y, train.groups,
                        BNNConfig().with_overrides(ensemble_members=latent_members))
    latent_seconds = time.perf_counter() - started
    held = curve_metrics.material_curves(test.x, test.y, test.groups)
    training_curves = curve_metrics.material_curves(train.x, train.y, train.groups)
    rng = np.random.default_rng(0)
    scores: dict[str, list[tuple[float, float]]] = {k: [] for k in (
        "chosen", "latent", "independent", "schaake", "generating")}
    for i, (x, y) in enumerate(held):
        from service.inference.curves import curve_samples

        independent = curve_metrics.independent_samples(posterior, x, CURVES, i).T
        template = np.array([np.interp(x, tx, ty) for tx, ty in training_curves])
        samples = {
            "chosen": curve_samples(posterior, curve, x, CURVES, i).T,
            "latent": latent.samples(x, CURVES, i),
            "independent": independent,
            "schaake": schaake(independent, template, rng),
            "generating": law_curves(law, x, CURVES, 10_000 + i)[1],
        }
        for key, value in samples.items():
            scores[key].append(curve_metrics.ensemble_scores(y, value))
    mean = {k: np.mean(v, axis=0) for k, v in scores.items()}
    conditioning = curve_metrics.conditioning_scores(posterior, curve, held)
    return {"law": law, "materials": materials, "held_out": held_out, "fit_s": fit_seconds,
            "latent_fit_s": latent_seconds, "scores": mean,
            "conditioning": conditioning,
            "latent_conditioning": latent_conditioning(latent, held),
            "marginals": marginal_checks(law, posterior, latent, train, test)}


def latent_conditioning(latent: Any, held: list[tuple[np.ndarray, np.ndarray]]
                        ) -> dict[str, float]:
    conditioned, unconditioned, pits = [], [], []
    prior = latent.log_weights(None, None)
    for x, y in held:
        pick = curve_metrics.given_positions(x.size)
        rest = np.setdiff1d(np.arange(x.size), pick)
        weights = latent.log_weights(x[pick], y[pick])
        conditioned.append(latent.log_predictive(x[rest], y[rest], weights))
        unconditioned.append(latent.log_predictive(x[rest], y[rest], prior))
        pits.append(latent.pit(x[rest], y[rest], weights))
    coverage = calibration.central_coverage(np.concatenate(pits), np.array([0.95]))[0]
    return {"gain_nats_per_point": float(np.mean(np.concatenate(conditioned))
                                         - np.mean(np.concatenate(unconditioned))),
            "coverage_95_conditioned": float(coverage)}


def marginal_checks(law: str, posterior: Posterior, latent: Any, train: TrainingData,
                    test: TrainingData) -> dict[str, Any]:
    from service.inference.curves import scatter_split

    grid = np.linspace(train.x.min(), train.x.max(), 101)
    population = population_statistics(law, grid)
    prediction = posterior.predict(grid)
    between, within = scatter_split(posterior.curve, grid, prediction.aleatoric_sd)
    scale = population["sd"] / np.sqrt(np.unique(train.groups).size)
    latent_moments = latent.moments(grid)
    strains, empirical = calibration.empirical_sd_by_strain(train.x, train.y)
    held = calibration.evaluate(posterior, test.x, test.y)
    reference = calibration.score(test.y, _empirical_gaussian(train, test.x))
    return {
        "epistemic_ratio": float(np.median(prediction.epistemic_sd / scale)),
        "latent_epistemic_ratio": float(np.median(latent_moments["epistemic_sd"] / scale)),
        "between_error": _relative_rms(between, population["between_sd"]),
        "within_error": _relative_rms(within, population["within_sd"]),
        "latent_between_error": _relative_rms(latent_moments["between_sd"],
                                              population["between_sd"]),
        "latent_within_error": _relative_rms(latent_moments["within_sd"],
                                             population["within_sd"]),
        "aleatoric_error_population": _relative_rms(prediction.aleatoric_sd,
                                                    population["sd"]),
        "aleatoric_error_training": calibration.aleatoric_sd_error(posterior, strains,
                                                                   empirical),
        "coverage_95": held["coverage"]["0.95"], "nlpd": held["nlpd"],
        "empirical_coverage_95": reference["coverage"]["0.95"],
        "empirical_nlpd": reference["nlpd"],
        "ngboost_nlpd": _ngboost_nlpd(train, test),
    }


def _empirical_gaussian(train: TrainingData, x_eval: np.ndarray
                        ) -> calibration.PredictiveDraws:
    strains, sd = calibration.empirical_sd_by_strain(train.x, train.y)
    means = np.array([train.y[train.x == s].mean() for s in strains])
    index = np.clip(np.searchsorted(strains, x_eval), 0, strains.size - 1)
    return calibration.PredictiveDraws(means[index][None], sd[index][None])


def _ngboost_nlpd(train: TrainingData, test: TrainingData) -> float:
    from ngboost import NGBRegressor

    model = NGBRegressor(n_estimators=500, verbose=False, random_state=0)
    model.fit(train.x[:, None], train.y)
    params = model.pred_dist(test.x[:, None]).params
    draws = calibration.PredictiveDraws(params["loc"][None], params["scale"][None])
    return calibration.nlpd(test.y, draws)


def print_table(result: dict[str, Any]) -> None:
    s = result["scores"]
    es_ind, vs_ind = s["independent"]
    es_gen, vs_gen = s["generating"]
    print(f"\n(c) whole curves, {result['law']}: {result['materials']} training materials "
          f"(seed 101), {result['held_out']} held-out (seed 202), {CURVES} curves each; chosen fit "
          f"{result['fit_s']:.0f} s, latent BNN {result['latent_fit_s']:.0f} s")
    print(f"{'row':<22}{'ES':>9}{'VS':>10}{'ES skill':>10}{'VS skill':>10}"
          f"{'cond gain':>11}{'cov95|3':>9}")
    gains = {"chosen": result["conditioning"], "latent": result["latent_conditioning"]}
    names = {"chosen": "chosen (copula)", "latent": "latent-input BNN",
             "independent": "independent", "schaake": "Schaake shuffle",
             "generating": "generating process"}
    for key, (es, vs) in s.items():
        gain = gains.get(key)
        extra = (f"{gain['gain_nats_per_point']:>11.3f}{gain['coverage_95_conditioned']:>9.3f}"
                 if gain else f"{'—':>11}{'—':>9}")
        print(f"{names[key]:<22}{es:>9.4f}{vs:>10.3f}"
              f"{(es_ind - es) / (es_ind - es_gen):>10.2f}"
              f"{(vs_ind - vs) / (vs_ind - vs_gen):>10.2f}{extra}")
    m = result["marginals"]
    print(f"epistemic calibration ratio: chosen {m['epistemic_ratio']:.2f}, latent BNN "
          f"{m['latent_epistemic_ratio']:.2f} (target 0.75-1.6)")
    print(f"between-material SD error: chosen {m['between_error']:.1%}, latent "
          f"{m['latent_between_error']:.1%} (target 20%); within: chosen "
          f"{m['within_error']:.1%}, latent {m['latent_within_error']:.1%} (target 30%)")
    print(f"aleatoric error vs population SD {m['aleatoric_error_population']:.1%}, vs the "
          f"training materials' own SD {m['aleatoric_error_training']:.1%}; held-out 95% "
          f"coverage {m['coverage_95']:.3f} (empirical Gaussian "
          f"{m['empirical_coverage_95']:.3f}); NLPD {m['nlpd']:.3f} (NGBoost "
          f"{m['ngboost_nlpd']:.3f}, empirical Gaussian {m['empirical_nlpd']:.3f})",
          flush=True)


def run(laws: list[str], materials: int, latent_members: int, held_out: int = HELD_OUT
        ) -> None:
    for law in laws:
        print_table(law_table(law, materials, latent_members, held_out))
