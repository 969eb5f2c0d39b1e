"""A registry for the web pages' tests and benchmark: several models and versions with
realistic manifests (method, fit time, held-out metrics, diagnostics, lineage), report
figures drawn from each version's own predictions, aliases, an archived version, and a
model whose description and tags carry markup and script."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.artifact import Artifact
from service.inference.posterior import Posterior
from service.registry.db import make_engine, make_session_factory, upgrade_to_head
from service.registry.writes import register, set_alias, update_model, update_version
from tests.service_process import random_artifact

# Markup a hostile or careless registrant could put in free text; the pages must show it
# as text and never run it (the browser test checks window.__pwned stays undefined).
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>x</b>'
HOSTILE_MODEL = "markup"

METHODS = ("bootstrap", "advi", "nuts", "bootstrap", "fullrank_advi", "ensemble")


def metrics_for(index: int) -> dict[str, Any]:
    """Plausible, distinct calibration metrics for the `index`-th version."""
    rng = np.random.default_rng(1000 + index)

    def scores(rows: int, shift: float) -> dict[str, Any]:
        coverage = {level: float(min(0.999, float(level) + rng.normal(shift, 0.02)))
                    for level in ("0.50", "0.80", "0.90", "0.95")}
        nominal = np.linspace(0.05, 0.95, 10)
        return {
            "rows": rows, "nlpd": float(0.35 + 0.2 * rng.random() - 0.02 * index),
            "crps": float(0.08 + 0.02 * rng.random()), "coverage": coverage,
            "miscalibration_area": float(0.01 + 0.04 * rng.random()),
            "calibration_curve": {"nominal": nominal.round(3).tolist(),
                                  "observed": np.clip(nominal + shift, 0, 1).round(4).tolist()},
        }

    if index < 3:  # stored before held-out scores had folds and a spread
        return {
            "split": {"by": "groups", "fraction": 0.2, "seed": index, "train_rows": 1600,
                      "test_rows": 400, "held_out_groups": ["m3", "m11", "m17"]},
            "held_out": scores(400, -0.01 * (index % 3)),
            **common_metrics(rng, scores),
        }
    held = scores(2000, -0.01 * (index % 3))
    held["spread"] = spread_for(held, rng)
    held["folds"] = [{"fold": k + 1, "held_out": [f"m{k + 5 * j}" for j in range(8)],
                      "rows": 400, "train_rows": 1600, "wall_time_s": 20.0 + k,
                      "nlpd": held["nlpd"] + 0.05 * (k - 2), "crps": held["crps"],
                      "coverage": held["coverage"], "miscalibration_area": 0.02}
                     for k in range(5)]
    metrics = {
        "split": {"by": "group", "folds": 5, "fraction": 0.2, "seed": index,
                  "test_rows": 2000, "held_out_groups": [f"m{k}" for k in range(40)]},
        "held_out": held,
        **common_metrics(rng, scores),
    }
    if index == 3:  # the held-out materials asked for a wider band, not confirmed
        metrics["scatter_widening"] = {"factor": 1.0, "applied": False, "asked_factor": 1.6123,
                                       "held_out_before": {"coverage": {"0.95": 0.7521}}}
    if index == 4:  # a covariate model: also scored at interior conditions left out
        conditions = scores(1200, -0.03)
        conditions["spread"] = spread_for(conditions, rng)
        conditions["folds"] = [
            {"fold": k + 1, "held_out": [f"temperature={t} K"], "rows": 400,
             "train_rows": 1600, "wall_time_s": 21.0, "nlpd": conditions["nlpd"],
             "crps": conditions["crps"], "coverage": conditions["coverage"],
             "miscalibration_area": 0.03}
            for k, t in enumerate(("273.15", "296.15", "323.15"))]
        metrics["held_out_conditions"] = conditions
        # ... and served wider than fitted (training.widening)
        metrics["scatter_widening"] = {
            "factor": 1.8734, "applied": True, "rule": "held-out materials too narrow",
            "held_out_before": {"nlpd": held["nlpd"] + 0.4, "coverage": {"0.95": 0.6213}},
            "held_out_after": {"nlpd": held["nlpd"], "coverage": {"0.95": 0.9412},
                               "fold_factors": [1.8, 1.9, 1.85, 1.9, 1.88]}}
    return metrics


def spread_for(held: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A spread over 40 materials in 5 folds, shaped as `training.folds` stores it."""
    def around(value: float, se: float) -> dict[str, Any]:
        return {"se": se, "sd_between": se * 40**0.5, "min": value - 3 * se,
                "max": value + 3 * se, "low_95": value - 2.02 * se, "high_95": value + 2.02 * se}

    coverage = {level: {**around(c, 0.01), "low_95": max(0.0, c - 0.03),
                        "high_95": min(1.0, c + 0.02)}
                for level, c in held["coverage"].items()}
    return {"unit": "material", "units": 40, "folds": 5,
            "nlpd": around(held["nlpd"], float(0.02 + 0.02 * rng.random())),
            "crps": around(held["crps"], 0.003), "coverage": coverage}


def common_metrics(rng: np.random.Generator, scores: Any) -> dict[str, Any]:
    return {
        "training": scores(1600, 0.0),
        "aleatoric_sd_error": float(0.04 + 0.03 * rng.random()),
        "aleatoric_sd_error_strains": 50,
        "epistemic_extrapolation": {"low_ratio": float(2 + rng.random()),
                                    "high_ratio": float(3 + rng.random())},
    }


def version_artifact(index: int, with_metrics: bool = True) -> Artifact:
    artifact = random_artifact(seed=100 + index, domain=(-0.4, 0.6))
    manifest = json.loads(json.dumps(artifact.manifest))
    method = METHODS[index % len(METHODS)]
    manifest["inference"] = {"method": method, "draws": 50, "seed": index,
                             "wall_time_s": round(12.0 + 3.7 * index, 3)}
    manifest["diagnostics"] = {"converged": index % 4 != 2, "members": 16,
                               "members_at_iteration_cap": index % 2,
                               "function_space": {"r_hat_max": 1.01 + 0.01 * (index % 3),
                                                  "ess_bulk_min": 380.0 + index}}
    manifest["data"] = {"rows": 2000, "training_rows": 1600, "groups": 40,
                        "sha256": f"{index:02d}" + "ab" * 31}
    manifest["config"] = {"method": method, "hidden_sizes": [8], "seed": index}
    manifest["library_versions"] = {"pymc": "5.28.0", "arviz": "0.23.0", "numpy": "2.3.1",
                                    "python": "3.11.2"}
    manifest["metrics"] = metrics_for(index) if with_metrics else {}
    return Artifact(manifest=manifest, arrays=artifact.arrays)


def figure_png(artifact: Artifact, kind: str) -> bytes:
    """A report-like PNG drawn from the artifact's own predictions."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    posterior = Posterior(artifact)
    strain = np.linspace(-0.5, 0.7, 80)
    prediction = posterior.predict(strain)
    figure, axes = plt.subplots(figsize=(4.8, 3.2), dpi=72)
    if kind == "fit":
        axes.fill_between(strain, prediction.mean - 1.96 * prediction.total_sd,
                          prediction.mean + 1.96 * prediction.total_sd, alpha=0.3)
        axes.plot(strain, prediction.mean)
        axes.set_title("fit: mean and total 95% band")
    else:
        axes.plot(strain, prediction.aleatoric_sd, label="aleatoric")
        axes.plot(strain, prediction.epistemic_sd, label="epistemic")
        axes.legend()
        axes.set_title("predicted SD")
    axes.set_xlabel("strain")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _register(session: Session, name: str, index: int, *, figures: bool = False,
              registered_by: str = "alice", **options: Any) -> int:
    artifact = version_artifact(index, with_metrics=options.pop("with_metrics", True))
    files = ({f"report/{kind}.png": figure_png(artifact, kind) for kind in ("fit", "sd")}
             if figures else None)
    return register(session, name, artifact.to_bytes(), actor=registered_by,
                    source=f"surrogate-train fit var/{name}.csv --name {name} --seed {index}",
                    files=files, **options)


def build_ui_registry(database_url: str) -> dict[str, Any]:
    """Models `rubber` (v1 archived, v2, v3 production with figures and InferenceData,
    v4 candidate with figures), `gent` (one version without held-out metrics) and the
    markup model. Returns what the tests look for."""
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        for index in range(1, 5):
            _register(session, "rubber", index, figures=index >= 3,
                      registered_by="bob" if index == 4 else "alice",
                      description=f"refit {index}",
                      inference_data=b"\x89HDF\r\n\x1a\n" + b"\0" * 64 if index == 3 else None)
        update_model(session, "rubber", actor="test",
                     description="Mooney-Rivlin group, 40 materials", tags={"team": "materials"})
        update_version(session, "rubber", 1, actor="test", status="archived")
        set_alias(session, "rubber", "production", 3, actor="test")
        set_alias(session, "rubber", "candidate", 4, actor="test")
        _register(session, "gent", 7, with_metrics=False)
        _register(session, HOSTILE_MODEL, 9, description=HOSTILE, tags={"note": HOSTILE})
        update_model(session, HOSTILE_MODEL, actor="test", description=HOSTILE,
                     tags={"note": HOSTILE})
        set_alias(session, HOSTILE_MODEL, "production", 1, actor="test")
        session.commit()
    engine.dispose()
    return {"models": ["gent", HOSTILE_MODEL, "rubber"], "production": {"rubber": 3},
            "candidate": {"rubber": 4}, "figures": {("rubber", 3), ("rubber", 4)}}


def build_many_versions(database_url: str, name: str, count: int) -> None:
    """`count` versions of one model, production on the middle one (the benchmark)."""
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        for index in range(1, count + 1):
            _register(session, name, index)
        set_alias(session, name, "production", max(1, count // 2), actor="test")
        set_alias(session, name, "candidate", count, actor="test")
        session.commit()
    engine.dispose()


REAL_FIT_MODEL = "mooney"


def add_real_fit(database_url: str, folder: Path) -> int:
    """A tiny real PyMC fit (4 bootstrap members, hidden 4) of a small Mooney-Rivlin group,
    registered the way `surrogate-train fit` does it, with its four report figures."""
    from training.data import make_mooney_rivlin_group
    from training.model import BNNConfig
    from training.pipeline import fit_csv
    from training.registration import FitRegistration, register_in_database, report_files

    make_mooney_rivlin_group(materials=8, points=15, seed=0).to_csv(folder / "group.csv",
                                                                    index=False)
    config = BNNConfig().with_overrides(hidden_sizes=(4,), ensemble_members=4, max_steps=400,
                                        seed=0)
    trained = fit_csv(folder / "group.csv", config, report_dir=folder / "report", folds=2)
    return register_in_database(database_url, FitRegistration(
        REAL_FIT_MODEL, trained.artifact.to_bytes(), alias="production",
        files=report_files(trained.artifact.manifest)))
