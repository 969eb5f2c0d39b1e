"""CSV -> normalised data -> BNN fit -> artifact (physical units) -> registry."""

from __future__ import annotations

import getpass
import platform
import shlex
import sys
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from service.artifact import SCHEMA_VERSION, Artifact, sha256_hex
from service.registry.db import check_schema_at_head, make_engine, make_session_factory
from service.registry.repository import record_audit, register_version, set_alias
from training.data import TrainingData, load_csv
from training.model import BNNConfig, FitResult, HeteroskedasticBNN


@dataclass(frozen=True)
class Units:
    x: str = "1"
    y: str = "MPa"


@dataclass
class TrainedFit:
    artifact: Artifact
    result: FitResult


def library_versions() -> dict[str, str]:
    names = ("pymc", "pytensor", "arviz", "numpy")
    return {"python": platform.python_version(), **{n: package_version(n) for n in names}}


def fit_data(data: TrainingData, config: BNNConfig, units: Units = Units()) -> TrainedFit:
    """Fit on standardised data; record the constants so the artifact speaks physical units."""
    x_mean, x_scale = float(np.mean(data.x)), float(np.std(data.x)) or 1.0
    y_mean, y_scale = float(np.mean(data.y)), float(np.std(data.y)) or 1.0
    result = HeteroskedasticBNN(config).fit((data.x - x_mean) / x_scale,
                                            (data.y - y_mean) / y_scale)
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "architecture": {
            "input_name": data.x_name, "input_unit": units.x,
            "output_name": data.y_name, "output_unit": units.y,
            "hidden_sizes": list(config.hidden_sizes), "activation": "tanh",
            "noise": config.noise, "noise_link": config.noise_link,
        },
        "normalisation": {"x_mean": x_mean, "x_scale": x_scale,
                          "y_mean": y_mean, "y_scale": y_scale},
        "training_domain": {"min": float(np.min(data.x)), "max": float(np.max(data.x))},
        "inference": {"method": config.method, "draws": config.draws, "seed": config.seed,
                      "wall_time_s": round(result.wall_time_s, 3)},
        "diagnostics": result.diagnostics,
        "config": config.to_dict(),
        "data": {"rows": data.rows, "sha256": data.sha256,
                 "groups": None if data.groups is None else int(len(np.unique(data.groups)))},
        "library_versions": library_versions(),
        "metrics": {},
    }
    artifact = Artifact(manifest=manifest, arrays=result.arrays)
    artifact.validate()
    return TrainedFit(artifact, result)


def fit_csv(path: Path, config: BNNConfig, x: str = "strain", y: str = "stress",
            group: str | None = "material", units: Units = Units()) -> TrainedFit:
    return fit_data(load_csv(path, x, y, group), config, units)


def register_artifact(database_url: str, name: str, artifact_bytes: bytes,
                      alias: str | None = None) -> int:
    """Store the artifact as the next version of `name` and optionally move `alias` to it,
    in one transaction (a failure leaves the registry as it was)."""
    engine = make_engine(database_url)
    try:
        check_schema_at_head(engine)
        with make_session_factory(engine).begin() as session:
            version = register_version(session, name, artifact_bytes,
                                       source=shlex.join(sys.argv),
                                       registered_by=f"{getpass.getuser()} (direct database)")
            if alias:
                set_alias(session, name, alias, version)
            record_audit(session, f"{getpass.getuser()} (surrogate-train)", "register_version",
                         name, version, alias, {"sha256": sha256_hex(artifact_bytes),
                                                "size_bytes": len(artifact_bytes)})
        return version
    finally:
        engine.dispose()
