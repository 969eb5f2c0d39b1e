"""Material properties (training.material_properties): a covariate fixed within every
material, in data where another covariate varies within materials, gets the narrower
first-layer prior (training.model.MATERIAL_PROPERTY_WEIGHT_PRIOR_SD); a covariate that
varies within materials, and every covariate of one curve per specimen, keep theirs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config import BNNConfig
from training.covariate_data import make_covariate_group
from training.material_properties import material_properties
from training.model import (
    COVARIATE_WEIGHT_PRIOR_SD,
    MATERIAL_PROPERTY_WEIGHT_PRIOR_SD,
    HeteroskedasticBNN,
)

TEMPERATURES = (273.15, 323.15)


def inputs(frame: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    columns = [frame["strain"].to_numpy(), *(frame[n].to_numpy() for n in names)]
    x = np.column_stack(columns)
    return (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)


def test_a_compounds_filler_is_a_property_its_test_temperature_is_not() -> None:
    frame = make_covariate_group(5, 6, 3, "compound", temperatures=TEMPERATURES)
    groups = frame["material"].to_numpy()
    assert material_properties(inputs(frame, ("temperature", "filler")), groups) == (2,)
    assert material_properties(inputs(frame, ("filler", "temperature")), groups) == (1,)
    # Nothing varies within a material beside it: no property to tell from a condition.
    assert material_properties(inputs(frame, ("filler",)), groups) == ()
    assert material_properties(inputs(frame, ("temperature",)), groups) == ()
    assert material_properties(inputs(frame, ("temperature", "filler")), None) == ()


def test_one_curve_per_specimen_has_no_material_property() -> None:
    frame = make_covariate_group(12, 6, 3, "specimen")
    assert material_properties(inputs(frame, ("temperature", "filler")),
                               frame["material"].to_numpy()) == ()


def test_a_property_gets_the_narrower_prior_in_the_graph() -> None:
    frame = make_covariate_group(5, 6, 3, "compound", temperatures=TEMPERATURES)
    x = inputs(frame, ("temperature", "filler"))
    y = (frame["stress"].to_numpy() - frame["stress"].mean()) / frame["stress"].std()
    bnn = HeteroskedasticBNN(BNNConfig().with_overrides(hidden_sizes=(4,)))
    bnn.build_model(x, y, properties=(2,))
    _, anchor_sd = bnn.prior_anchors["trunk0_W"]
    np.testing.assert_array_equal(anchor_sd[1], COVARIATE_WEIGHT_PRIOR_SD)
    np.testing.assert_array_equal(anchor_sd[2], MATERIAL_PROPERTY_WEIGHT_PRIOR_SD)
    bnn.build_model(x, y)
    np.testing.assert_array_equal(bnn.prior_anchors["trunk0_W"][1][2],
                                  COVARIATE_WEIGHT_PRIOR_SD)
