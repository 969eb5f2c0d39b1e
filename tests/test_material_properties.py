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


def test_the_fit_records_which_covariates_it_kept_smoother() -> None:
    """A real tiny fit of compounds at two temperatures: the filler is recorded as a
    material property, the temperature is not; without the filler, nothing is."""
    from training.data import CovariateColumn, TrainingData
    from training.pipeline import fit_training_rows

    frame = make_covariate_group(4, 6, 3, "compound", temperatures=TEMPERATURES)
    config = BNNConfig().with_overrides(hidden_sizes=(3,), ensemble_members=2,
                                        map_max_iterations=100)

    def diagnostics(columns: tuple[CovariateColumn, ...]) -> dict:
        data = TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                            frame["material"].to_numpy(), "strain", "stress", "-",
                            len(frame), frame[[c.name for c in columns]].to_numpy(float),
                            columns)
        return fit_training_rows(data, config).artifact.spec.diagnostics

    temperature, filler = CovariateColumn("temperature", "K"), CovariateColumn("filler")
    assert diagnostics((temperature, filler))["material_properties"] == ["filler"]
    assert diagnostics((temperature,))["material_properties"] == []
