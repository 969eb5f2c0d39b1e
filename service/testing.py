"""Random-weight artifacts for tests and benchmarks (no PyMC needed)."""

from __future__ import annotations

import numpy as np

from service.artifact import SCHEMA_VERSION, Artifact, expected_shapes


def random_artifact(
    draws: int = 50,
    hidden_sizes: tuple[int, ...] = (8,),
    seed: int = 0,
    noise_link: str = "exp",
    domain: tuple[float, float] = (-0.5, 0.5),
) -> Artifact:
    """An artifact whose weights are random draws, with a plausible manifest."""
    rng = np.random.default_rng(seed)
    arrays = {
        name: rng.normal(0.0, 1.0 / np.sqrt(shape[1]) if name.endswith(".W") else 0.5, shape)
        for name, shape in expected_shapes(draws, 1, list(hidden_sizes)).items()
    }
    arrays["sigma_head.b"] -= 1.5  # sigma well below the data scale, as in real fits
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "architecture": {
            "input_name": "strain", "input_unit": "1", "output_name": "stress",
            "output_unit": "MPa", "hidden_sizes": list(hidden_sizes), "activation": "tanh",
            "noise": "heteroskedastic", "noise_link": noise_link,
        },
        "normalisation": {"x_mean": 0.0, "x_scale": 0.3, "y_mean": -0.2, "y_scale": 0.8},
        "training_domain": {"min": domain[0], "max": domain[1]},
        "inference": {"method": "random", "draws": draws, "seed": seed},
        "diagnostics": {},
        "metrics": {},
    }
    return Artifact(manifest=manifest, arrays=arrays)
