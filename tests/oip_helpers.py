"""Shared pieces of the in-process OIP tests (tests/test_oip.py, tests/test_oip_binary.py)."""

import pytest
from sqlalchemy.orm import Session

from service.registry.writes import register, set_alias
from tests.service_process import random_artifact

STRAIN = [-0.45, -0.2, 0.0, 0.15, 0.5, 0.7]


@pytest.fixture
def registered(session: Session) -> None:
    """Model 'demo' versions 1 and 2; production points at version 2."""
    register(session, "demo", random_artifact(seed=21).to_bytes(), actor="test")
    register(session, "demo", random_artifact(seed=22).to_bytes(), actor="test")
    set_alias(session, "demo", "production", 2, actor="test")
    set_alias(session, "demo", "candidate", 1, actor="test")
    session.commit()


def strain_tensor(data, shape=None, datatype="FP64") -> dict:
    return {"name": "strain", "shape": shape or [len(data)], "datatype": datatype,
            "data": data}


def outputs_of(response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {o["name"]: o for o in response.json()["outputs"]}
