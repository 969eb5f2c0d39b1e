"""CSV -> normalised data -> BNN fit -> artifact (physical units); `training.registration`
stores it.

Each fit builds its posterior once, right after the network is fitted, and everything
after it - the curve model, the calibration scores, the report - uses that one object.
What they add to the manifest makes a new artifact from the typed `Manifest` (never a
dict changed in place), and the posterior takes the new manifest without being rebuilt.

Why one module of this size: the served fit, the held-out fits beside it and the
covariate inputs they share are one sequence, each step using the one before.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.artifact import SCHEMA_VERSION, Artifact
from service.inference.conditions import on_read_scale
from service.manifest import (
    EXTRAPOLATION_SCHEMA_VERSION,
    LOG_COVARIATES_SCHEMA_VERSION,
    MAX_TESTED_CONDITIONS,
    STRAIN_RANGES_SCHEMA_VERSION,
    Architecture,
    Covariate,
    CurveModelSection,
    Inference,
    Manifest,
    Normalisation,
    TrainingDomain,
)
from training.data import (
    CovariateColumn,
    TrainingData,
    load_csv,
    subset,
    with_covariate_scales,
)
from training.folds import Folds, Split, held_out_plans
from training.material_properties import material_properties
from training.model import BNNConfig, FitResult, HeteroskedasticBNN
from training.origin import stress_free_origin
from training.thinning import network_rows

if TYPE_CHECKING:
    from service.inference.posterior import Posterior


@dataclass(frozen=True)
class Units:
    x: str = "1"
    y: str = "MPa"


@dataclass(frozen=True)
class TrainedFit:
    artifact: Artifact
    result: FitResult
    posterior: Posterior  # the artifact's, built once per fit

    def updated(self, **sections: Any) -> TrainedFit:
        """The same fit with these manifest sections replaced (metrics, diagnostics,
        curve model, report): a new artifact, the same posterior under its manifest."""
        artifact = Artifact.from_spec(self.artifact.spec.model_copy(update=sections),
                                      self.artifact.arrays)
        return TrainedFit(artifact, self.result, self.posterior.described_by(artifact.spec))


def library_versions() -> dict[str, str]:
    names = ("pymc", "pytensor", "arviz", "numpy", "scipy", "nutpie")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = package_version(name)
        except PackageNotFoundError:  # nutpie is needed only for --method nuts
            continue
    return versions


def fit_data(data: TrainingData, config: BNNConfig, units: Units = Units(),
             holdout: float = 0.2, report_dir: Path | None = None,
             parallel: bool = True, folds: int | None = None) -> TrainedFit:
    """Fit the served version on ALL the data, and score separate fits on held-out folds.

    The served posterior uses every material. Its held-out metrics come from `folds`
    further fits of the same configuration (None: as many as
    `training.folds.held_out_plans` affords), each without one fold of the materials and
    scored on it (`folds` 1 holds out the fraction `holdout` once): they estimate, with
    their spread over materials, how a fit of this kind does on new materials. A
    covariate model is also scored at interior tested conditions left out
    (`training.folds.condition_folds`, metrics `held_out_conditions`). The fits run in
    worker processes beside the served fit (`parallel`). `holdout=0` or `folds=0` runs
    only the served fit and stores no held-out metrics.
    """
    from training import calibration
    from training.folds import held_out_folds, held_out_section, split_section
    from training.widening import widening_section

    data = with_covariate_scales(data)
    # Each plan of held-out fits becomes the metrics section of its name.
    seed = config.model.seed
    plans = held_out_plans(data, folds, holdout, seed)
    trained, results = fit_with_folds(data, plans, config, units, parallel)
    y_scale = trained.artifact.spec.normalisation.y_scale
    metrics: dict[str, Any] = {"split": split_section(plans["held_out"], seed),
                               "refit_on_all_data": True}
    for name, plan in plans.items():
        if results[name]:
            metrics[name] = held_out_section(plan, results[name], y_scale)
    if plans["held_out"].by == "group" and results["held_out"] and config.model.noise_link == "exp":
        # Few materials: the held-out ones may show the answer too narrow (training.widening).
        metrics["scatter_widening"] = widening_section(
            held_out_folds(data, plans["held_out"], results["held_out"]), y_scale)
        trained = widened(trained, metrics["scatter_widening"]["factor"])
    posterior, spec = trained.posterior, trained.artifact.spec
    if results["held_out"]:
        metrics["held_out_fit"] = {
            "folds": len(results["held_out"]),
            "train_rows": [result["fit"]["train_rows"] for result in results["held_out"]],
            "wall_time_s": [result["fit"]["wall_time_s"] for result in results["held_out"]]}
    metrics["training"] = calibration.evaluate(posterior, data.x, data.y, y_scale,
                                               data.covariates)
    strains, empirical, at = calibration.empirical_sd_by_condition(data.x, data.y,
                                                                   data.covariates)
    metrics["aleatoric_sd_error"] = calibration.aleatoric_sd_error(posterior, strains,
                                                                   empirical, at)
    metrics["aleatoric_sd_error_strains"] = int(strains.size)
    # Strain-only summaries of a covariate model describe its central tested condition.
    representative = calibration.representative(posterior)
    metrics["epistemic_extrapolation"] = calibration.epistemic_extrapolation(representative)
    diagnostics = dict(spec.diagnostics)
    function_space = calibration.function_space_diagnostics(
        representative, trained.result.chains, float(np.min(data.x)), float(np.max(data.x)))
    if function_space:
        diagnostics["function_space"] = function_space
        diagnostics["converged"] = bool(diagnostics.get("converged", True)
                                        and function_space["r_hat_max"] < 1.05)
    trained = trained.updated(metrics=metrics, diagnostics=diagnostics)
    if report_dir is not None:
        from training.report import write_report

        files = write_report(trained.posterior, trained.result, data, report_dir,
                             next((result["conditioning"] for result in results["held_out"]
                                   if result["conditioning"] is not None), None))
        trained = trained.updated(report={"dir": str(Path(report_dir).resolve()),
                                          "files": files})
    trained.artifact.validate()
    return trained


def widened(trained: TrainedFit, factor: float) -> TrainedFit:
    """The fit with every draw's sigma multiplied by `factor` (ln factor added to the
    sigma head's bias, the exp noise link): the same fit when `factor` is 1."""
    if factor == 1.0:
        return trained
    from service.inference.posterior import Posterior

    arrays = dict(trained.artifact.arrays)
    arrays["sigma_head.b"] = arrays["sigma_head.b"] + np.log(factor)
    artifact = Artifact.from_spec(trained.artifact.spec, arrays)
    artifact.validate()
    return TrainedFit(artifact, trained.result, Posterior(artifact))


def fit_model(data: TrainingData, config: BNNConfig, units: Units = Units(),
              full_data: TrainingData | None = None) -> TrainedFit:
    """The BNN on `data`, plus the curve model of its materials when it has groups."""
    from training.curves import fit_for_posterior

    trained = fit_training_rows(data, config, units, full_data)
    started = time.perf_counter()
    section = fit_for_posterior(trained.posterior, data.x, data.y, data.groups,
                                covariates=data.covariates)
    if section is None:
        return trained
    section["fit"]["wall_time_s"] = round(time.perf_counter() - started, 3)
    return trained.updated(curve_model=CurveModelSection.model_validate(section))


def fit_with_folds(data: TrainingData, plans: dict[str, Folds], config: BNNConfig,
                   units: Units, parallel: bool = True
                   ) -> tuple[TrainedFit, dict[str, list[dict[str, Any]]]]:
    """The served fit on all of `data`, and `held_out_fit` of every fold of every plan
    (per plan, in fold order).

    In parallel, worker processes (one per core) fit the folds while this process fits the
    served version, then takes folds too (`training.work_sharing`): on two cores 5 folds
    take about as long as 2.5 fits one after the other (docs/calibration.md, "Held-out
    figures and their spread")."""
    jobs = [(name, plan.split(k)) for name, plan in plans.items() for k in range(plan.count)]
    if not jobs or not parallel:
        done = [held_out_fit(data, split, config, units) for _, split in jobs]
        trained = fit_model(data, config, units)
    else:
        from training.work_sharing import run_beside

        trained, done = run_beside(lambda: fit_model(data, config, units), held_out_fit,
                                   [(data, split, config, units) for _, split in jobs])
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in plans}
    for (name, _), result in zip(jobs, done, strict=True):
        results[name].append(result)
    return trained, results


def held_out_fit(data: TrainingData, split: Split, config: BNNConfig,
                 units: Units) -> dict[str, Any]:
    """Fit the training split and score it on the held-out rows: the version's held-out
    metrics, and the report's conditioning example (one held-out material given 3 of its
    points), computed here with this fit's posterior. Runs in a worker process;
    everything it takes and returns is picklable."""
    import training  # noqa: F401  (one BLAS thread in the worker too)
    from training import calibration, curve_metrics

    train, test = subset(data, split.train), subset(data, split.test)
    started = time.perf_counter()
    posterior = fit_model(train, config, units, full_data=data).posterior
    draws = calibration.predictive_draws(posterior, test.x, test.covariates)
    points = calibration.pointwise(test.y, draws)
    metrics = calibration.summarise(points, posterior.y_scale)
    conditioning = None
    if posterior.curve is not None and test.groups is not None:
        metrics["curves"] = curve_metrics.evaluate(posterior, posterior.curve, test.x,
                                                   test.y, test.groups, seed=config.model.seed,
                                                   covariates=test.covariates)
        conditioning = curve_metrics.conditioning_example(posterior, posterior.curve, test.x,
                                                          test.y, test.groups, test.covariates)
    return {"metrics": metrics, "pointwise": points, "draws": draws,
            "fit": {"train_rows": train.rows, "wall_time_s": round(
                time.perf_counter() - started, 3)},
            "conditioning": conditioning}


def fit_training_rows(data: TrainingData, config: BNNConfig, units: Units = Units(),
                      full_data: TrainingData | None = None) -> TrainedFit:
    """Fit on standardised data; record the constants so the artifact speaks physical units.
    The fit's posterior is built here, once."""
    from service.inference.posterior import Posterior

    full = full_data or data
    x_mean, x_scale = float(np.mean(data.x)), float(np.std(data.x)) or 1.0
    y_mean, y_scale = float(np.mean(data.y)), float(np.std(data.y)) or 1.0
    inputs = (data.x - x_mean) / x_scale
    sections: dict[str, Any] = {}  # none for strain-only data: its manifest is as it was
    origin = None
    if data.covariates is not None:
        inputs, sections = covariate_inputs(data, inputs)
        origin = stress_free_origin(data, inputs, x_mean, x_scale, y_mean, y_scale,
                                    config.model.seed)
    properties = material_properties(inputs, data.groups)
    # Dense curves are thinned for the network alone (training.thinning).
    rows = network_rows(data.x, data.groups, data.covariates)
    kept = slice(None) if rows is None else rows
    result = HeteroskedasticBNN(config).fit(
        inputs[kept], ((data.y - y_mean) / y_scale)[kept],
        None if data.groups is None else data.groups[kept], origin, properties)
    if rows is not None:
        result.diagnostics["network_rows"] = int(rows.size)
    if data.covariates is not None:
        result.diagnostics["stress_free_origin"] = origin is not None
        # The covariates whose effect the fit kept smoother (training.material_properties).
        result.diagnostics["material_properties"] = [
            data.covariate_columns[j - 1].name for j in properties]
    sections.setdefault("schema_version", SCHEMA_VERSION)
    spec = Manifest(
        architecture=Architecture(
            input_name=data.x_name, input_unit=units.x,
            output_name=data.y_name, output_unit=units.y,
            hidden_sizes=list(config.model.hidden_sizes), activation="tanh",
            noise=config.model.noise, noise_link=config.model.noise_link),
        normalisation=Normalisation(x_mean=x_mean, x_scale=x_scale, y_mean=y_mean,
                                    y_scale=y_scale),
        training_domain=TrainingDomain(min=float(np.min(data.x)), max=float(np.max(data.x))),
        inference=Inference(method=config.method, draws=config.stored_draws,
                            seed=config.model.seed, wall_time_s=round(result.wall_time_s, 3)),
        diagnostics=result.diagnostics,
        config=config.to_dict(),
        data={"rows": full.rows, "training_rows": data.rows, "sha256": full.sha256,
              "groups": None if full.groups is None else int(len(np.unique(full.groups)))},
        library_versions=library_versions(),
        metrics={},
        **sections,
    )
    artifact = Artifact.from_spec(spec, result.arrays)
    artifact.validate()
    posterior = Posterior(artifact)
    if spec.covariates:
        artifact, posterior = with_measured_level_changes(artifact, posterior)
    return TrainedFit(artifact, result, posterior)


def with_measured_level_changes(artifact: Artifact, posterior: Posterior
                                ) -> tuple[Artifact, Posterior]:
    """The covariate model's artifact with each covariate's `log_level_change`, measured on
    its posterior (training.level_trend), and the posterior that answers with it."""
    from service.inference.posterior import Posterior
    from training.level_trend import log_level_changes

    spec = artifact.spec
    assert spec.covariates is not None
    covariates = [covariate.model_copy(update={"log_level_change": change})
                  for covariate, change in zip(spec.covariates, log_level_changes(posterior),
                                               strict=True)]
    spec = spec.model_copy(update={
        "covariates": covariates,
        "schema_version": max(spec.schema_version, EXTRAPOLATION_SCHEMA_VERSION)})
    artifact = Artifact.from_spec(spec, artifact.arrays)
    artifact.validate()
    return artifact, Posterior(artifact)


def covariate_inputs(data: TrainingData, strain: np.ndarray
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """The network's input (rows, 1 + k): the standardised strain, then each covariate
    (its natural log where it is read on a log scale, `CovariateColumn.reads_log`)
    standardised by its own mean and SD; and the manifest's `covariates` and
    `tested_conditions` sections."""
    assert data.covariates is not None
    values = data.covariates
    log = np.array([column.reads_log(values[:, j])
                    for j, column in enumerate(data.covariate_columns)], dtype=bool)
    read = on_read_scale(values, log)
    mean = read.mean(axis=0)
    scale = read.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column: standardising would divide by zero
    tested, condition_of_row = np.unique(values, axis=0, return_inverse=True)
    if tested.shape[0] > MAX_TESTED_CONDITIONS:
        raise ValueError(f"the data hold {tested.shape[0]} distinct covariate conditions; a "
                         f"model lists at most {MAX_TESTED_CONDITIONS} (round the "
                         "covariates to the precision they were controlled to)")
    sections = {
        "covariates": [
            Covariate(name=column.name, unit=column.unit, mean=float(mean[j]),
                      scale=float(scale[j]), min=float(values[:, j].min()),
                      max=float(values[:, j].max()), transform="log" if log[j] else None)
            for j, column in enumerate(data.covariate_columns)],
        "tested_conditions": tested.tolist(),
    }
    if log.any():  # a replica that predates log scales must refuse this artifact
        sections["schema_version"] = LOG_COVARIATES_SCHEMA_VERSION
    ranges = condition_strain_ranges(data.x, condition_of_row.reshape(-1), tested.shape[0])
    if ranges is not None:  # a replica that predates them must refuse this artifact
        sections["tested_strain_ranges"] = ranges.tolist()
        sections["schema_version"] = STRAIN_RANGES_SCHEMA_VERSION
    return np.column_stack([strain, (read - mean) / scale]), sections


# A condition whose strains come this close to an end of the training domain (as a
# fraction of its span) counts as reaching it: real curves start and stop a reading or
# two apart, and a request at the domain's end (a solver's zero strain) should not be
# flagged for that.
STRAIN_RANGE_REACH = 0.05


def condition_strain_ranges(strain: np.ndarray, condition_of_row: np.ndarray,
                            conditions: int) -> np.ndarray | None:
    """(conditions, 2): the [min, max] strain of the rows at each tested condition, an end
    within STRAIN_RANGE_REACH of the domain's taken as the domain's; None where every
    condition then covers the whole domain (nothing to record: the training domain says
    it all, and the manifest stays as it was before the field)."""
    low = np.full(conditions, np.inf)
    high = np.full(conditions, -np.inf)
    np.minimum.at(low, condition_of_row, strain)
    np.maximum.at(high, condition_of_row, strain)
    first, last = float(strain.min()), float(strain.max())
    reach = STRAIN_RANGE_REACH * (last - first)
    low[low - first <= reach] = first
    high[last - high <= reach] = last
    if np.all(low == first) and np.all(high == last):
        return None
    return np.column_stack([low, high])


def fit_csv(path: Path, config: BNNConfig, x: str = "strain", y: str = "stress",
            group: str | None = "material", units: Units = Units(), holdout: float = 0.2,
            report_dir: Path | None = None, folds: int | None = None,
            covariates: Sequence[CovariateColumn] = ()) -> TrainedFit:
    return fit_data(load_csv(path, x, y, group, covariates), config, units, holdout,
                    report_dir, folds=folds)
