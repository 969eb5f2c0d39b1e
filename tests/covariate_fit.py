"""A tiny real fit of a model with two covariates (temperature [K], rate [1/s]) for the
tests of the covariate surfaces (export, OIP, web pages, report): a make-data compound
group of 6 compounds at 3 temperatures x 2 rates, hidden 8, a 2-member bootstrap. About
15 s; conftest.py shares one per test session (`covariate_fit`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from service.artifact import Artifact
from service.registry.writes import register
from training.config import BNNConfig
from training.covariate_data import make_covariate_group
from training.data import CovariateColumn, TrainingData
from training.pipeline import TrainedFit, fit_data

TEMPERATURES = (273.15, 296.15, 323.15)
RATES = (0.01, 0.1)
COLUMNS = (CovariateColumn("temperature", "K"), CovariateColumn("rate", "1/s"))


@dataclass(frozen=True)
class CovariateFit:
    trained: TrainedFit
    data: TrainingData

    @property
    def artifact(self) -> Artifact:
        return self.trained.artifact


def covariate_data(materials: int = 6, points: int = 10, seed: int = 3) -> TrainingData:
    frame = make_covariate_group(materials, points, seed, "compound",
                                 temperatures=TEMPERATURES, rates=RATES)
    return TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame),
                        frame[[c.name for c in COLUMNS]].to_numpy(dtype=float), COLUMNS)


def fit_covariate_model(report_dir: Path | None = None) -> CovariateFit:
    data = covariate_data()
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=2,
                                        map_max_iterations=400)
    return CovariateFit(fit_data(data, config, holdout=0, report_dir=report_dir,
                                 parallel=False), data)


def register_models(session: Session, fit: CovariateFit) -> None:
    """Model 'hot' (the covariate fit) and model 'plain' (strain only, random weights),
    version 1 each, committed."""
    from tests.service_process import random_artifact

    register(session, "hot", fit.artifact.to_bytes(), actor="test")
    register(session, "plain", random_artifact(draws=10, hidden_sizes=(4,)).to_bytes(),
             actor="test")
    session.commit()
