"""`surrogate-train`: make synthetic data, fit a BNN, register it.

Why one module of this size: every command's options are declared here, side by side, so
the commands keep one vocabulary; the work itself lives in the modules each command calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from training import covariate_data
from training.data import LAWS

if TYPE_CHECKING:
    from training.registration import FitRegistration

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Fit heteroskedastic BNN surrogates and register them.")

DEMO_NAME = "demo"


@cli.command("make-data")
def make_data(
    out: Path = typer.Option(..., help="CSV file to write."),
    law: str = typer.Option("mooney-rivlin", help=f"Material law: {', '.join(LAWS)}."),
    materials: int = typer.Option(40, min=1),
    points: int | None = typer.Option(None, min=2, help="Strains per curve [default: 50; "
                                      "25 with --covariates]."),
    seed: int = typer.Option(0),
    covariates: bool = typer.Option(False, "--covariates", help="Curves that depend on "
                                    "temperature [K], strain rate [1/s] and filler fraction "
                                    "[1] (columns temperature, rate, filler; "
                                    "docs/covariates.md); --law does not apply."),
    design: str = typer.Option("compound", help="With --covariates: compound (every "
                               "material tested at every condition of the grid) | specimen "
                               "(one curve per specimen at its own random condition)."),
    temperatures: str | None = typer.Option(None, help="With --covariates --design "
                                            "compound: temperatures [K], comma separated "
                                            "[default: 253.15,273.15,296.15,323.15,353.15]."),
    rates: str | None = typer.Option(None, help="With --covariates --design compound: "
                                     "strain rates [1/s], comma separated [default: 0.01]."),
) -> None:
    """Write a synthetic group of materials (columns strain, stress, material; with
    --covariates also temperature, rate, filler)."""
    if covariates:
        points = points or covariate_data.POINTS
        frame = _covariate_frame(materials, points, seed, design, temperatures, rates)
        conditions = frame.groupby(["material", "temperature", "rate"]).ngroups
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        typer.echo(f"wrote {len(frame)} rows ({conditions} curves of {points} strains, "
                   f"{materials} materials, design {design}) to {out}")
        return
    if law not in LAWS:
        raise typer.BadParameter(f"unknown law {law!r}; choose from {list(LAWS)}",
                                 param_hint="--law")
    points = points or 50
    frame = LAWS[law](materials=materials, points=points, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    typer.echo(f"wrote {len(frame)} rows ({materials} materials x {points} strains) to {out}")


def _covariate_frame(materials: int, points: int, seed: int, design: str,
                     temperatures: str | None, rates: str | None):  # type: ignore[no-untyped-def]
    if design not in covariate_data.DESIGNS:
        raise typer.BadParameter(f"unknown design {design!r}; choose from "
                                 f"{list(covariate_data.DESIGNS)}", param_hint="--design")
    grid = {}
    for option, text in (("--temperatures", temperatures), ("--rates", rates)):
        if text is None:
            continue
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers",
                                     param_hint=option) from None
        if not all(np.isfinite(v) and v > 0 for v in values):
            raise typer.BadParameter("values must be positive (kelvin, 1/s)",
                                     param_hint=option)
        grid[option.strip("-")] = values
    return covariate_data.make_covariate_group(materials, points, seed, design, **grid)


@cli.command()
def fit(
    csv: Path = typer.Argument(..., exists=True, dir_okay=False, help="Training data CSV."),
    name: str = typer.Option(..., help="Registered model name."),
    x: str = typer.Option("strain", help="Input column."),
    y: str = typer.Option("stress", help="Output column."),
    group: str = typer.Option("material", help="Group (material) column, if present."),
    x_unit: str = typer.Option("1", help="Unit of the input column."),
    y_unit: str = typer.Option("MPa", help="Unit of the output column."),
    alias: str | None = typer.Option(None, help="Point this alias at the new version."),
    noise: str = typer.Option("heteroskedastic", help="heteroskedastic | homoskedastic."),
    hidden: str = typer.Option("16", help="Hidden layer widths, comma separated."),
    method: str | None = typer.Option(None, help="bootstrap (default: Bayesian-bootstrap "
                                      "ensemble of MAP fits) | advi | fullrank_advi | nuts | "
                                      "ensemble."),
    steps: int | None = typer.Option(None, help="Maximum ADVI steps (it stops earlier when "
                                     "the loss plateaus)."),
    draws: int | None = typer.Option(None, min=2, help="Posterior draws to store."),
    tune: int | None = typer.Option(None, min=0, help="NUTS warm-up draws per chain."),
    chains: int | None = typer.Option(None, min=1, help="NUTS chains."),
    target_accept: float | None = typer.Option(None, min=0.5, max=0.999,
                                               help="NUTS target acceptance rate."),
    members: int | None = typer.Option(None, min=2, help="Ensemble members (MAP fits) "
                                       "of bootstrap/ensemble = stored draws."),
    folds: int | None = typer.Option(None, min=0, help="Score the fit by K further fits, "
                                     "each without one of K folds of the materials (rows "
                                     "without a group column) and scored on it: every "
                                     "material held out once, scores with their spread over "
                                     "materials; a covariate model also leaves up to K "
                                     "interior tested conditions out. 1: one split of "
                                     "--holdout; 0: no held-out scores. [default: 5, fewer "
                                     "for data over 2,000 rows (docs/calibration.md)]"),
    holdout: float = typer.Option(0.2, min=0.0, max=0.9,
                                  help="With --folds 1: fraction of groups (else rows) held "
                                  "out. 0 scores nothing, whatever --folds."),
    report: Path | None = typer.Option(None, help="Write the fit report (PNG figures) here "
                                       "[default: var/reports/NAME/<UTC time>]."),
    seed: int = typer.Option(0),
    database_url: str | None = typer.Option(None, envvar="SURROGATE_DATABASE_URL",
                                            help="Registry URL (default: embedded SQLite)."),
    artifact_out: Path | None = typer.Option(None, help="Also write the artifact file here."),
    idata_out: Path | None = typer.Option(None, help="Also write ArviZ InferenceData (netCDF)."),
    register_url: str | None = typer.Option(
        None, help="Register through this service's admin API (e.g. http://host:8000) "
        "instead of writing to the database."),
    token: str | None = typer.Option(None, envvar="SURROGATE_ADMIN_TOKEN",
                                     help="Admin token for --register-url."),
    covariate: list[str] = typer.Option([], "--covariate", help="NAME[:UNIT][:SCALE]: a "
                                        "numeric column that enters the network beside the "
                                        "strain (repeatable, e.g. --covariate temperature:K "
                                        "--covariate rate:1/s). SCALE log or linear; left "
                                        "out, log where every value is > 0 and they span a "
                                        "factor of 100 or more; docs/covariates.md."),
) -> None:
    """Fit the BNN on CSV data and register it as the next version of NAME."""
    if register_url and not token:
        typer.echo("error: --register-url needs --token (or SURROGATE_ADMIN_TOKEN)", err=True)
        raise typer.Exit(2)
    from service.errors import SurrogateError
    from training.config import config_from_fit_options
    from training.data import CovariateColumn
    from training.fit_outputs import default_report_dir, inference_data_bytes
    from training.pipeline import Units, fit_csv
    from training.registration import FitRegistration, check_names, report_files

    try:
        check_names(name, alias)
        config = config_from_fit_options(
            noise=noise, hidden=hidden, method=method, steps=steps, draws=draws, tune=tune,
            chains=chains, target_accept=target_accept, members=members, seed=seed)
        if not register_url:
            _check_registry(database_url)  # before the fit, which takes far longer
        columns = [CovariateColumn.parse(option) for option in covariate]
        report_dir = report or default_report_dir(name)
        trained = fit_csv(csv, config, x, y, group, Units(x_unit, y_unit), holdout, report_dir,
                          folds, columns)
    except (ValueError, SurrogateError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    data = trained.artifact.to_bytes()
    if artifact_out:
        artifact_out.write_bytes(data)
    if idata_out:
        trained.result.inference_data.to_netcdf(str(idata_out))
    registration = FitRegistration(
        name, data, alias, inference_data=inference_data_bytes(trained.result, idata_out),
        files=report_files(trained.artifact.manifest))  # the figures, stored with it
    if register_url:
        version = _register_via_api(register_url, token or "", registration)
    else:
        version = _register(database_url, registration)
    typer.echo(f"registered {name} version {version}"
               f"{f' as {alias!r}' if alias else ''}: {_fit_summary(trained.artifact)}")
    typer.echo(f"report: {trained.artifact.spec.report['dir']}")


def _fit_summary(artifact: object) -> str:
    """One line with what a modeller checks first: time, convergence, calibration."""
    spec = artifact.spec  # type: ignore[attr-defined]
    diag, metrics = spec.diagnostics, spec.metrics
    method = spec.inference.method
    parts = [f"{method} fit {spec.inference.wall_time_s or 0.0:.1f} s"]
    if "steps" in diag:
        parts.append(f"{diag['steps']} ADVI steps")
    if "members" in diag:
        parts.append(f"{diag['members']} members")
    if diag.get("divergences") is not None:
        parts.append(f"{diag['divergences']} divergences")
    if "function_space" in diag:
        parts.append(f"function-space R-hat {diag['function_space']['r_hat_max']:.3f}")
    if diag.get("members_at_iteration_cap"):
        # Not a failure: L-BFGS stopped by its iteration cap, not by its tolerance
        # (docs/calibration.md, "MAP tolerance").
        parts.append(f"{diag['members_at_iteration_cap']} at the L-BFGS iteration cap")
    else:
        parts.append(f"converged={diag['converged']}")
    if metrics.get("aleatoric_sd_error") is not None:
        parts.append(f"aleatoric SD error {metrics['aleatoric_sd_error']:.1%}")
    growth = metrics.get("epistemic_extrapolation")
    if growth:
        parts.append(f"epistemic SD 25% beyond the data x{growth['low_ratio']:.1f} (low end)"
                     f"/x{growth['high_ratio']:.1f} (high end) of its mean inside")
    held = metrics.get("held_out")
    if held:
        parts.append(_held_out_scores(held))
        curves = held.get("curves")
        if curves:
            parts.append(f"held-out curves: variogram score {curves['variogram_score']:.3g} "
                         f"(independent sampling {curves['independent_variogram_score']:.3g})"
                         f", energy score {curves['energy_score']:.3g} "
                         f"({curves['independent_energy_score']:.3g})")
            gain = curves.get("conditioning", {}).get("gain_nats_per_point")
            if gain is not None:
                parts.append(f"3 points of a material gain {gain:.2f} nats per other point")
    widening = metrics.get("scatter_widening")
    if widening:
        parts.extend(_widening_parts(widening))
    conditions = metrics.get("held_out_conditions")
    if conditions:
        parts.append(_held_out_scores(conditions, "untested interior conditions"))
    if spec.curve_model is not None and spec.curve_model.fit:
        fitted = spec.curve_model.fit["materials"]
        # With covariates each curve is a material at one condition.
        groups = (spec.data or {}).get("groups")
        parts.append(f"curve model of {fitted} curves of {groups} materials"
                     if spec.covariates and groups else f"curve model of {fitted} materials")
    if spec.covariates and spec.tested_conditions:
        domain = spec.training_domain
        partial = sum(1 for low, high in spec.tested_strain_ranges or ()
                      if low > domain.min or high < domain.max)
        short = (f" ({partial} of them tested over part of the strain range only)"
                 if partial else "")
        parts.append(f"covariates {', '.join(c.name for c in spec.covariates)} at "
                     f"{len(spec.tested_conditions)} tested conditions{short}")
    if diag.get("network_rows") is not None:
        # Dense curves thinned for the network (training.thinning).
        parts.append(f"network fitted on {diag['network_rows']:,} of "
                     f"{(spec.data or {}).get('rows', 0):,} rows (dense curves thinned)")
    return ", ".join(parts)


def _widening_parts(widening: dict) -> list[str]:  # type: ignore[type-arg]
    """What `training.widening` did: the factor taken, or one the held-out materials asked
    for that their folds did not confirm (the band may still be too narrow)."""
    if widening["applied"]:
        after = widening["held_out_after"]
        return [f"scatter widened x{widening['factor']:.2f} (held-out materials answered too "
                f"narrowly; 95% coverage cross-fitted "
                f"{widening['held_out_before']['coverage']['0.95']:.3f} -> "
                f"{after['coverage']['0.95']:.3f})"]
    if widening.get("asked_factor", 1.0) > 1.0:
        return [f"held-out materials asked for a band x{widening['asked_factor']:.2f} wider, "
                "which their folds did not confirm: not widened"]
    return []


def _held_out_scores(held: dict, what: str = "held-out") -> str:  # type: ignore[type-arg]
    from training.folds import summary_parts

    first, *scores = summary_parts(held, what)
    return f"{first} {', '.join(scores)}"


def _check_registry(database_url: str | None) -> None:
    """Exit 2 naming the fix when the registry's schema is not at head."""
    from service.registry.db import SchemaNotAtHeadError, check_schema_at_head, make_engine
    from service.settings import get_settings

    engine = make_engine(database_url or get_settings().database_url)
    try:
        check_schema_at_head(engine)
    except SchemaNotAtHeadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()


def _register(database_url: str | None, registration: FitRegistration) -> int:
    from service.registry.db import SchemaNotAtHeadError
    from service.settings import get_settings
    from training.registration import register_in_database

    try:
        return register_in_database(database_url or get_settings().database_url,
                                    registration)
    except SchemaNotAtHeadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _register_via_api(url: str, token: str, registration: FitRegistration) -> int:
    import httpx

    from training.registry_client import RegistrationError, register_via_api

    try:
        return register_via_api(url, token, registration).version
    except (RegistrationError, httpx.HTTPError) as exc:
        typer.echo(f"error: registration through {url} failed: {exc}", err=True)
        raise typer.Exit(1) from exc


@cli.command()
def register(
    artifact: Path = typer.Argument(..., exists=True, dir_okay=False,
                                    help="Artifact file (surrogate-train fit --artifact-out)."),
    name: str = typer.Option(..., help="Registered model name."),
    url: str = typer.Option(..., help="Service base URL, e.g. http://127.0.0.1:8000."),
    token: str = typer.Option(..., envvar="SURROGATE_ADMIN_TOKEN",
                              help="Admin token (or SURROGATE_ADMIN_TOKEN)."),
    alias: str | None = typer.Option(None, help="Point this alias at the new version."),
    idata: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                      help="ArviZ InferenceData netCDF to attach."),
    description: str | None = typer.Option(None, help="Version description."),
) -> None:
    """Register an artifact file through a running service's admin API, with the report
    figures its manifest names when their folder is readable here."""
    from service.errors import SurrogateError
    from training.registration import FitRegistration, check_names

    try:
        check_names(name, alias)
    except SurrogateError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    data = artifact.read_bytes()
    registration = FitRegistration(name, data, alias,
                                   inference_data=idata.read_bytes() if idata else None,
                                   files=_figures_if_present(data), description=description)
    version = _register_via_api(url, token, registration)
    typer.echo(f"registered {name} version {version}{f' as {alias!r}' if alias else ''} "
               f"via {url}")


def _figures_if_present(artifact_bytes: bytes) -> dict[str, bytes]:
    """The artifact's report figures, or none (with a warning) when they are not readable
    on this machine, e.g. an artifact copied here without its report folder."""
    from service.artifact import Artifact
    from training.registration import report_files

    try:
        return report_files(Artifact.from_bytes(artifact_bytes).manifest)
    except (OSError, ValueError) as exc:  # ArtifactError is a ValueError
        typer.echo(f"warning: registering without the report figures: {exc}", err=True)
        return {}


@cli.command()
def demo(
    data_dir: Path = typer.Option(Path("var"), help="Where the demo CSV is written."),
    database_url: str | None = typer.Option(None, envvar="SURROGATE_DATABASE_URL"),
) -> None:
    """Make sure the registry holds the demo model (fit it once if absent)."""
    from service.registry.db import make_engine, make_session_factory
    from service.registry.reads import model_exists
    from service.settings import get_settings

    url = database_url or get_settings().database_url
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        present = model_exists(session, DEMO_NAME)
    engine.dispose()
    if present:
        typer.echo(f"registry already holds model {DEMO_NAME!r}; not refitting")
        return
    csv = data_dir / "demo.csv"
    make_data(out=csv, law="mooney-rivlin", materials=40, points=50, seed=0,
              covariates=False, design="compound", temperatures=None, rates=None)
    fit(csv=csv, name=DEMO_NAME, x="strain", y="stress", group="material", x_unit="1",
        y_unit="MPa", alias="production", noise="heteroskedastic", hidden="16",
        method=None, steps=None, draws=None, tune=None, chains=None, target_accept=None,
        members=None, folds=None, holdout=0.2, report=None, seed=0,
        database_url=url, artifact_out=None, idata_out=None, register_url=None, token=None,
        covariate=[])


plan_cli = typer.Typer(no_args_is_help=True, help="Check the plan files of fit-many.")
cli.add_typer(plan_cli, name="plan")


@plan_cli.command("validate")
def plan_validate(plan: Path = typer.Argument(..., help="Plan file (YAML).")) -> None:
    """Check a plan without fitting: keys, values, names, data files and their columns."""
    from training import fit_many_command

    raise typer.Exit(fit_many_command.validate(plan, fit))


@plan_cli.command("count")
def plan_count(plan: Path = typer.Argument(..., help="Plan file (YAML).")) -> None:
    """Print the number of groups (an Indexed Job's `completions`)."""
    from training import fit_many_command

    raise typer.Exit(fit_many_command.count(plan, fit))


@cli.command("fit-many")
def fit_many(
    plan: Path = typer.Argument(..., help="Plan file (YAML): `defaults` and `groups`."),
    workers: int | None = typer.Option(None, min=1, help="Groups fitted at once "
                                       "(default: the number of cores)."),
    index: int | None = typer.Option(None, min=0, envvar="JOB_COMPLETION_INDEX",
                                     help="Fit only this entry (0-based)."),
    force: bool = typer.Option(False, "--force", help="Refit unchanged groups too."),
    compile_dir: Path = typer.Option(Path("var/pytensor"), help="Root of the processes' "
                                     "own PyTensor compile directories."),
    compile_seed: Path | None = typer.Option(None, exists=True, file_okay=False, help="A "
                                             "warm PyTensor compiledir, copied into new ones."),
    database_url: str | None = typer.Option(None, envvar="SURROGATE_DATABASE_URL",
                                            help="Registry URL (default: embedded SQLite)."),
    register_url: str | None = typer.Option(None, help="Register via this admin API."),
    token: str | None = typer.Option(None, envvar="SURROGATE_ADMIN_TOKEN",
                                     help="Admin token for --register-url."),
) -> None:
    """Fit each group of a plan as `fit` would, in parallel; skip unchanged groups."""
    from training import fit_many_command

    raise typer.Exit(fit_many_command.run(
        plan, fit, index=index, workers=workers, force=force, compile_dir=compile_dir,
        compile_seed=compile_seed, database_url=database_url, register_url=register_url,
        token=token))

def main() -> None:
    cli()
