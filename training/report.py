"""Fit report: the figures a modeller looks at before promoting a version (PNG, Agg).

- ``fit.png``: the data, the predictive mean, mean +/- 2 total SD and mean +/- 2 aleatoric
  SD, over the training domain extended by 25% on both sides (where the epistemic band
  must widen); held-out rows drawn apart from training rows.
- ``sd.png``: aleatoric and epistemic SD against strain next to the empirical per-strain
  SD of the training data (the picture the textbook BNN gets wrong).
- ``calibration.png``: observed vs nominal central-interval coverage, training and
  held-out, with the held-out curve's 95% interval over materials and the held-out NLPD
  and 95% coverage with theirs.
- ``convergence.png``: ADVI loss trace per step (with its smoothed curve); for NUTS the
  per-chain traces of mu(x) at three strains (function space); for the bootstrap, every
  member's mu(x) over the domain and 25% beyond it; for a plain ensemble, the members'
  log posterior.
- ``curves.png`` (models fitted on grouped data): about 20 whole curves sampled from the
  served model (each one new material with its test noise) over the data.
- ``conditioning.png`` (with a held-out split): one held-out material, 3 of its points
  given to the held-out fit, the band it then predicts for that material, and the
  material's other points.
- ``covariate_<name>.png`` (models with covariates, one per covariate): mean curves with
  bands across that covariate, tested values marked (training.report_covariates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from service.artifact import sha256_hex  # noqa: E402
from service.inference.posterior import Posterior  # noqa: E402
from training import calibration, report_covariates, report_curves  # noqa: E402
from training.curve_metrics import ConditioningExample  # noqa: E402
from training.data import TrainingData, subset  # noqa: E402


def _labels(posterior: Posterior) -> tuple[str, str]:
    arch = posterior.spec.architecture
    return (f"{arch.input_name} [{arch.input_unit}]",
            f"{arch.output_name} [{arch.output_unit}]")


def write_report(posterior: Posterior, result: Any, data: TrainingData, out_dir: Path,
                 conditioning: ConditioningExample | None = None) -> list[dict[str, str]]:
    """Write the report PNGs of the fit whose posterior (with its manifest's metrics and
    diagnostics) is `posterior` into `out_dir`; return [{file, sha256}] for the manifest.
    `conditioning` is the held-out fit's example, when there is one."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x_label, y_label = _labels(posterior)
    spec = posterior.spec
    title = f"{spec.architecture.noise} BNN, {spec.inference.method}"
    model, every_row, model_title = posterior, data, title
    if spec.covariates:
        # A covariate model is drawn at its central tested condition, with its rows there.
        posterior = calibration.representative(posterior)
        assert posterior.condition is not None and data.covariates is not None
        data = subset(data, np.flatnonzero(np.all(data.covariates == posterior.condition,
                                                  axis=1)))
        title += " at " + ", ".join(f"{c.name}={v:g} {c.unit}" for c, v in
                                     zip(spec.covariates, posterior.condition, strict=True))
    figures = {
        # The served fit trained on every row; the split belongs to the held-out fit.
        "fit.png": _fit_figure(posterior, data, x_label, y_label, title),
        "sd.png": _sd_figure(posterior, data, x_label, y_label, title),
        "calibration.png": _calibration_figure(posterior, title),
        "convergence.png": _convergence_figure(posterior, result, x_label, y_label, title),
    }
    figures.update(report_curves.figures(posterior, data, conditioning, x_label, y_label,
                                         title))
    figures.update(report_covariates.figures(model, every_row, x_label, y_label, model_title))
    files = []
    for name, figure in figures.items():
        path = out_dir / name
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        files.append({"file": name, "sha256": sha256_hex(path.read_bytes())})
    return files


def _grid(posterior: Posterior, beyond: float = 0.25, points: int = 400) -> np.ndarray:
    low, high = posterior.domain
    span = high - low
    return np.linspace(low - beyond * span, high + beyond * span, points)


def _fit_figure(posterior: Posterior, data: TrainingData, x_label: str, y_label: str,
                title: str) -> plt.Figure:
    grid = _grid(posterior)
    prediction = posterior.predict(grid)
    figure, axis = plt.subplots(figsize=(8, 5))
    axis.scatter(data.x, data.y, s=4, color="0.55", alpha=0.5, label="training data")
    mean, total, aleatoric = prediction.mean, prediction.total_sd, prediction.aleatoric_sd
    axis.fill_between(grid, mean - 2 * total, mean + 2 * total, color="tab:blue", alpha=0.2,
                      label="mean ± 2 total SD")
    axis.plot(grid, mean - 2 * aleatoric, "--", color="tab:green", lw=1)
    axis.plot(grid, mean + 2 * aleatoric, "--", color="tab:green", lw=1,
              label="mean ± 2 aleatoric SD")
    axis.plot(grid, mean, color="tab:blue", lw=2, label="predictive mean")
    for edge in posterior.domain:
        axis.axvline(edge, color="0.3", lw=0.8, ls=":")
    axis.set(xlabel=x_label, ylabel=y_label,
             title=f"{title}: data and predictive bands (dotted: training domain)")
    axis.legend(loc="best", fontsize=8)
    return figure


def _sd_figure(posterior: Posterior, train: TrainingData, x_label: str, y_label: str,
               title: str) -> plt.Figure:
    grid = _grid(posterior)
    prediction = posterior.predict(grid)
    strains, empirical = calibration.empirical_sd_by_strain(train.x, train.y)
    figure, axis = plt.subplots(figsize=(8, 5))
    axis.plot(grid, prediction.aleatoric_sd, color="tab:green", lw=2, label="aleatoric SD")
    axis.plot(grid, prediction.epistemic_sd, color="tab:purple", lw=2, label="epistemic SD")
    if strains.size:
        axis.plot(strains, empirical, "o", ms=3, color="k",
                  label="empirical SD per strain (training data)")
    error = posterior.spec.metrics.get("aleatoric_sd_error")
    note = f"; aleatoric RMS rel. error {error:.1%}" if error is not None else ""
    axis.set_yscale("log")
    axis.set(xlabel=x_label, ylabel=f"standard deviation of {y_label}",
             title=f"{title}: scatter vs strain{note}")
    axis.legend(loc="best", fontsize=8)
    return figure


def _calibration_figure(posterior: Posterior, title: str) -> plt.Figure:
    metrics = posterior.spec.metrics
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], color="0.5", lw=1, label="perfect calibration")
    for key, colour in (("training", "0.3"), ("held_out", "tab:red")):
        if key in metrics:
            curve = metrics[key]["calibration_curve"]
            area = metrics[key]["miscalibration_area"]
            axis.plot(curve["nominal"], curve["observed"], color=colour, lw=2,
                      label=f"{key.replace('_', '-')} (miscal. area {area:.3f})")
    held = metrics.get("held_out") or {}
    spread = held.get("spread")
    if spread:
        curve = held["calibration_curve"]
        axis.fill_between(curve["nominal"], curve["low_95"], curve["high_95"],
                          color="tab:red", alpha=0.15, lw=0,
                          label=f"95% interval over {spread['units']} held-out "
                                f"{spread['unit']}s")
        axis.text(0.98, 0.02, held_out_summary(held), transform=axis.transAxes, ha="right",
                  va="bottom", fontsize=8, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    axis.set(xlabel="nominal central-interval probability [1]",
             ylabel="observed fraction inside [1]", xlim=(0, 1), ylim=(0, 1),
             title=f"{title}: calibration")
    axis.legend(loc="upper left", fontsize=8)
    return figure


def held_out_summary(held: dict[str, Any]) -> str:
    """The held-out scores with their 95% intervals over units, one per line."""
    spread = held["spread"]
    nlpd, coverage = spread["nlpd"], spread["coverage"]["0.95"]
    lines = [f"held out: {spread['units']} {spread['unit']}s in {spread['folds']} fold"
             f"{'s' if spread['folds'] != 1 else ''}",
             f"NLPD {held['nlpd']:.3f}" + (f" [{nlpd['low_95']:.3f}, {nlpd['high_95']:.3f}]"
                                           if nlpd["low_95"] is not None else ""),
             f"95% coverage {held['coverage']['0.95']:.3f} "
             f"[{coverage['low_95']:.3f}, {coverage['high_95']:.3f}]"]
    return "\n".join(lines)


def _convergence_figure(posterior: Posterior, result: Any, x_label: str, y_label: str,
                        title: str) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(8, 4))
    spec = posterior.spec
    method = spec.inference.method
    if result.loss_trace is not None and result.loss_trace.size:
        losses = result.loss_trace
        axis.plot(losses, color="0.7", lw=0.5, label="loss per step")
        window = max(1, losses.size // 100)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axis.plot(np.arange(smooth.size) + window - 1, smooth, color="tab:blue", lw=2,
                  label=f"mean of {window} steps")
        low, high = np.percentile(losses, [1, 99.5])
        axis.set_ylim(low - 0.05 * abs(low), high + 0.05 * abs(high))
        done = spec.diagnostics.get("converged")
        axis.set(xlabel="ADVI step [1]", ylabel="negative ELBO [nats, standardised data]",
                 title=f"{title}: loss trace (converged={done})")
        axis.legend(fontsize=8)
    elif method == "nuts":
        chains = result.chains
        strains = np.linspace(*posterior.domain, 3)
        mu, _, _ = posterior.network_outputs(strains)
        per_chain = mu.shape[0] // chains
        for k, strain in enumerate(strains):
            for c in range(chains):
                axis.plot(mu[c * per_chain:(c + 1) * per_chain, k], lw=0.6,
                          color=f"C{k}", alpha=0.4 + 0.6 * c / max(1, chains - 1),
                          label=f"{x_label} = {strain:.3g}" if c == 0 else None)
        r_hat = spec.diagnostics.get("function_space", {}).get("r_hat_max")
        axis.set(xlabel="draw in chain [1]", ylabel=f"mu(x) [{y_label}]",
                 title=f"{title}: function-space traces (max R-hat {r_hat})")
        axis.legend(fontsize=8)
    elif method == "bootstrap":
        # Each member is one draw: their spread is the epistemic SD, so show the curves,
        # over the training domain and a quarter of it beyond either end.
        strains = _grid(posterior, points=200)
        mu, _, _ = posterior.network_outputs(strains)
        axis.plot(strains, mu.T, lw=0.8, color="tab:blue", alpha=0.6)
        for edge in posterior.domain:
            axis.axvline(edge, color="0.4", ls="--", lw=1)
        axis.set(xlabel=x_label, ylabel=f"mu(x) per member, {y_label}",
                 title=f"{title}: {mu.shape[0]} bootstrap members (dashed: training domain)")
    else:
        values = np.asarray(spec.diagnostics.get("member_log_posterior", []))
        # The gap to the best member: a member stuck in a poor optimum stands out.
        axis.bar(np.arange(values.size), values.max() - values if values.size else [],
                 color="tab:blue")
        axis.set(xlabel="ensemble member [1]",
                 ylabel="log posterior below the best member [nats]",
                 title=f"{title}: members' MAP optima (best: {values.max():.1f})"
                 if values.size else f"{title}: members' MAP optima")
    return figure
