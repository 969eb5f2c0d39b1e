"""Cards over a temperature in the real solver: CalculiX 2.20 (Debian `ccx`) runs the
one-element model (C3D8, uniaxial tension and compression, NLGEOM) with a card of one
row of constants per temperature of the tiny covariate fit (tests/covariate_fit.py, as
saved in tests/fixtures/cards_before), the
temperature set by *INITIAL CONDITIONS, TYPE=TEMPERATURE and *TEMPERATURE in the step:
- at a row's temperature the reaction force is that row's analytic nominal stress
  (relative 1e-3), within the row's stated fit error of the served curve there;
- between two rows it is the analytic stress of the constants and D terms interpolated
  linearly in temperature (relative 1e-3), and differs from both rows' stresses, so the
  solver did read the rows and the temperature.
Skipped without `ccx`; a failure under SURROGATE_REQUIRE_CALCULIX=1 (`.ci/run`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.export import forms
from service.export.cards import material_block
from service.registry.writes import register
from tests.calculix_run import ccx_binary, uniaxial_reaction
from tests.covariate_fit import TEMPERATURES

URL = "/v1/models/hot/export"
SAVED = Path(__file__).parent / "fixtures" / "cards_before"
OVER = {"covariates": "rate:0.05", "over": "temperature", "points": 41}
_INTERPOLATION = 2e-3  # as in test_cards_calculix: the table's interpolation and ccx digits


@pytest.fixture
def hot(session: Session) -> None:
    # The tiny covariate fit's artifact as saved beside the golden files: a re-fit is not
    # bit-reproducible, and a sampled curve's card can change form (or lose its stiffness)
    # from one fit to the next.
    register(session, "hot", (SAVED / "hot.artifact").read_bytes(), actor="test")
    session.commit()


def interpolated(card: dict, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """The constants and D terms CalculiX uses at `temperature`: linear between the two
    rows around it (the rows' temperatures are the over values, ascending)."""
    rows = card["rows"]
    values = [row["temperature"] for row in rows]
    i = min(max(int(np.searchsorted(values, temperature, side="right")) - 1, 0), len(rows) - 2)
    t = (temperature - values[i]) / (values[i + 1] - values[i])
    a, b = rows[i], rows[i + 1]
    constants = [np.array(list(row["coefficients"].values())) for row in (a, b)]
    return (1 - t) * constants[0] + t * constants[1], (1 - t) * np.array(a["d"]) + t * np.array(
        b["d"])


def row_stress(card: dict, index: int, stretch: np.ndarray) -> np.ndarray:
    row = card["rows"][index]
    return forms.compressible_uniaxial_stress(forms.FORMS[card["form"]],
                                              list(row["coefficients"].values()), row["d"],
                                              stretch)


@pytest.mark.parametrize("form", ["auto", "polynomial_n3"])
def test_cards_over_temperature_in_calculix(client: TestClient, hot, tmp_path: Path,
                                            form: str) -> None:
    ccx_binary()
    query = {**OVER, "form": form, "curves": 1, "seed": 7}
    text = client.get(URL, params={**query, "format": "calculix"}).text
    body = client.get(URL, params={**query, "format": "json"}).json()
    assert body["conditions"][0]["temperature"] == TEMPERATURES[0]
    at_row = TEMPERATURES[1]
    between = 0.5 * (TEMPERATURES[0] + TEMPERATURES[1])
    for card in body["cards"]:
        block = material_block(text, card["material"])
        model = forms.FORMS[card["form"]]
        worst_row = worst_between = worst_served = 0.0
        apart = np.inf
        for end in (0.5, -0.5):
            # At a row's temperature: that row's card, and the served curve there.
            strain, force = uniaxial_reaction(block, card["material"], end, 5,
                                              tmp_path / card["material"] / f"row{end}", at_row)
            expected = row_stress(card, 1, 1 + strain)
            worst_row = max(worst_row, float(np.max(np.abs(force / expected - 1))))
            at = np.array(body["temperature"]) == at_row
            served = np.interp(strain, np.array(body["strain"])[at],
                               np.array(body[card["column"]])[at])
            sd = np.interp(strain, np.array(body["strain"])[at], np.array(body["total_sd"])[at])
            worst_served = max(worst_served, float(np.max(np.abs(force - served) / sd)))
            # Between two rows: the constants interpolated linearly in temperature.
            strain, force = uniaxial_reaction(block, card["material"], end, 5,
                                              tmp_path / card["material"] / f"mid{end}",
                                              between)
            constants, d = interpolated(card, between)
            expected = forms.compressible_uniaxial_stress(model, constants, d, 1 + strain)
            worst_between = max(worst_between, float(np.max(np.abs(force / expected - 1))))
            for index in (0, 1):
                apart = min(apart, float(np.max(np.abs(
                    force - row_stress(card, index, 1 + strain))) / np.max(np.abs(force))))
        assert worst_row <= 1e-3, (card["material"], worst_row)
        assert worst_between <= 1e-3, (card["material"], worst_between)
        # The rows differ by far more than the tolerance, so the interpolation is seen.
        assert apart > 10 * 1e-3, (card["material"], apart)
        assert worst_served <= card["rows"][1]["fit_error"] + _INTERPOLATION, (
            card["material"], worst_served)
        print(f"{card['material']:>16} {card['keyword']:<16} ccx at {at_row} K vs row "
              f"{worst_row:.1e}; at {between} K vs interpolated constants {worst_between:.1e} "
              f"(vs either row >= {apart:.1e}); ccx vs served at {at_row} K "
              f"{worst_served:.3f} SD (stated {card['rows'][1]['fit_error']:.3f})")
