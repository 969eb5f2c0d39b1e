"""Cards without `over` answer byte for byte as they did before cards over a covariate
existed: the files in tests/fixtures/cards_before were written by that code, for a model
without covariates (tests/rubber_model.py) and for a model with covariates at one
condition (the tiny covariate fit's artifact, saved beside them: a re-fit would not give
the same bytes). The covariate model's two files were rewritten once since, when the
summary kernel began taking each strain's condition itself: the bias it adds up in
float32 moved one number in each file by one unit in its last digit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.registry.writes import register, set_alias
from tests.rubber_model import rubber_artifact

BEFORE = Path(__file__).parent / "fixtures" / "cards_before"
CONDITION = "temperature:310,rate:0.05"
REQUESTS = {
    ("rubber", "rubber_auto.inp"): {"format": "calculix", "quantiles": "0.1", "curves": 2,
                                    "seed": 3},
    ("rubber", "rubber_polynomial_n3.inp"): {"format": "calculix", "form": "polynomial_n3"},
    ("rubber", "rubber_yeoh_abaqus.inp"): {"format": "abaqus", "form": "yeoh"},
    ("rubber", "rubber_ogden_n2.json"): {"format": "json", "form": "ogden_n2",
                                         "quantiles": "0.9", "points": 41},
    ("hot", "hot_auto.inp"): {"format": "calculix", "covariates": CONDITION, "points": 41},
    ("hot", "hot_yeoh.json"): {"format": "json", "form": "yeoh", "covariates": CONDITION,
                               "points": 41, "quantiles": "0.2"},
}


@pytest.fixture
def models(session: Session) -> None:
    register(session, "rubber", rubber_artifact().to_bytes(), actor="test")
    set_alias(session, "rubber", "production", 1, actor="test")
    register(session, "hot", (BEFORE / "hot.artifact").read_bytes(), actor="test")
    session.commit()


@pytest.mark.parametrize(("model", "name"), sorted(REQUESTS))
def test_cards_without_over_are_unchanged(client: TestClient, models, model: str,
                                          name: str) -> None:
    response = client.get(f"/v1/models/{model}/export", params=REQUESTS[model, name])
    assert response.status_code == 200, response.text
    assert response.content == (BEFORE / name).read_bytes()
