"""An artifact fitted by the code from before covariates, and the service's answers to it.

`tests/fixtures/legacy_group.npz` was fitted by `surrogate-train`'s pipeline before the
network could take covariates (`python -m tests.legacy_fixture --write` with that code
wrote it and `legacy_group_answers.json`). `tests/test_covariates_compat.py` checks that the
current code loads the artifact and answers every request below with the same bytes, and
that a fit without covariates builds the same PyMC model (same log density at the same
point) and a manifest with the same keys.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARTIFACT = FIXTURES / "legacy_group.npz"
ANSWERS = FIXTURES / "legacy_group_answers.json"
NAME = "legacy"

# (method, path, JSON body or None): every kind of answer a strain-only model gives.
REQUESTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("post", f"/v1/models/{NAME}/predict", {"strain": [0.1]}),
    ("post", f"/v1/models/{NAME}/predict", {"strain": [-0.45, -0.2, 0.0, 0.2, 0.45, 0.7]}),
    ("post", f"/v1/models/{NAME}/predict",
     {"strain": list(np.linspace(-0.5, 0.5, 300).round(6)), "tangent": True}),
    ("post", f"/v1/models/{NAME}/predict",
     {"strain": [-0.3, 0.0, 0.3], "quantiles": [0.025, 0.5, 0.975]}),
    ("post", f"/v1/models/{NAME}/predict",
     {"strain": [-0.3, 0.0, 0.3], "draws": 7, "seed": 11}),
    ("post", f"/v1/models/{NAME}/predict",
     {"strain": [-0.4, 0.1, 0.4], "observed": {"strain": [-0.3, 0.2],
                                                "stress": [-0.8, 0.25]},
      "draws": 3, "seed": 2, "quantiles": [0.1, 0.9]}),
    ("post", f"/v1/models/{NAME}/predict",
     {"strain": [-0.4, 0.9], "extrapolation": "reject"}),
    ("get", f"/v1/models/{NAME}/export?format=csv&points=9&quantiles=0.1,0.9", None),
    ("get", f"/v1/models/{NAME}/export?format=lsdyna&points=9&curves=2&seed=3", None),
    ("post", f"/v2/models/{NAME}/infer",
     {"inputs": [{"name": "strain", "shape": [2], "datatype": "FP64",
                  "data": [-0.2, 0.3]}]}),
]


def fit_legacy_artifact() -> bytes:
    """A tiny group fit (6 materials x 12 strains, hidden 8, 4 bootstrap members)."""
    from training.data import TrainingData, make_mooney_rivlin_group
    from training.model import BNNConfig
    from training.pipeline import fit_data

    frame = make_mooney_rivlin_group(materials=6, points=12, seed=3)
    data = TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "legacy",
                        len(frame))
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=4, seed=1)
    return fit_data(data, config, holdout=0.0, parallel=False).artifact.to_bytes()


def answers(client: TestClient) -> list[dict[str, Any]]:
    """Status and body bytes (base64) of every request in REQUESTS."""
    out = []
    for method, path, body in REQUESTS:
        response = (client.post(path, json=body) if method == "post" else client.get(path))
        out.append({"status": response.status_code,
                    "body": base64.b64encode(response.content).decode()})
    return out


def serve_and_answer(artifact_bytes: bytes, database_url: str) -> list[dict[str, Any]]:
    from sqlalchemy.orm import Session

    from service.main import create_app
    from service.registry.db import make_engine
    from service.registry.writes import register
    from service.settings import Settings

    engine = make_engine(database_url)
    with Session(engine) as session:
        register(session, NAME, artifact_bytes, actor="test")
        session.commit()
    engine.dispose()
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        return answers(client)


def main() -> None:
    import tempfile

    from service.registry.db import upgrade_to_head

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refit and rewrite the fixture")
    parser.parse_args()
    data = fit_legacy_artifact()
    FIXTURES.mkdir(exist_ok=True)
    ARTIFACT.write_bytes(data)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/registry.db"
        upgrade_to_head(url)
        ANSWERS.write_text(json.dumps(serve_and_answer(data, url), indent=1) + "\n")


if __name__ == "__main__":
    main()
