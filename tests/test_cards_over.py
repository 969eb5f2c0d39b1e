"""Fitted cards over a temperature covariate (a tiny real fit with temperature and rate,
tests/covariate_fit.py): one card per exported column, one row of constants per
temperature, read back by the reader written from the CalculiX 2.20 manual's
*HYPERELASTIC data lines (tests/test_cards.py) and split into the manual's rows; each row
is the card of the model at its condition; form=auto's choice over the rows; the JSON
rows; the 422s and the 413 naming `over`. CalculiX runs the cards in
tests/test_cards_over_calculix.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.export import forms
from service.export.cards import material_block
from tests.covariate_fit import TEMPERATURES, register_models
from tests.test_cards import MANUAL_LAYOUT, read_cards

URL = "/v1/models/hot/export"
OVER = {"covariates": "rate:0.05", "over": "temperature", "points": 41}
# Forms whose row (constants, D terms, temperature) is a pair of lines in the manual: the
# first holds 8 values, the second the rest and the temperature.
LINE_PAIRS = ("POLYNOMIAL,N=3", "OGDEN,N=3")


@pytest.fixture
def hot(session: Session, covariate_fit) -> None:
    register_models(session, covariate_fit)


def get(client: TestClient, **query):
    return client.get(URL, params=query)


@pytest.mark.parametrize("name", sorted(forms.FORMS))
def test_a_card_over_temperature_has_a_row_per_temperature(client: TestClient, hot,
                                                           name: str) -> None:
    response = get(client, format="calculix", form=name, **OVER)
    assert response.status_code == 200, response.text
    cards = read_cards(response.text)
    assert list(cards) == ["HOT_V1_MEAN"]
    keyword, flat, comments = cards["HOT_V1_MEAN"]
    form = forms.FORMS[name]
    assert keyword == form.keyword.replace(" ", "")
    # The manual's rows: constants, D terms, then the temperature; one data line each, or
    # a pair of lines (8 values, then the rest) for LINE_PAIRS.
    width = len(MANUAL_LAYOUT[keyword]) + 1
    rows = [flat[k:k + width] for k in range(0, len(flat), width)]
    lines = material_block(response.text, "HOT_V1_MEAN")[2:]
    per_row = [8, width - 8] if keyword in LINE_PAIRS else [width]
    assert [len(line.split(",")) for line in lines] == per_row * len(TEMPERATURES)
    card = get(client, format="json", form=name, **OVER).json()["cards"][0]
    assert card["over"] == "temperature" and card["over_unit"] == "K"
    assert len(rows) == len(card["rows"]) == len(TEMPERATURES)
    for values, row, temperature in zip(rows, card["rows"], TEMPERATURES, strict=True):
        assert len(values) == width
        assert values[-1] == row["temperature"] == temperature
        np.testing.assert_allclose(values[:-1], [*row["coefficients"].values(), *row["d"]],
                                   rtol=1e-15)
    text = " ".join(comments)
    for temperature, row in zip(TEMPERATURES, card["rows"], strict=True):
        assert f"row temperature={temperature!r} K:" in text
        assert f"fit error: {row['fit_error']:.3g} total SD" in text
    for expected in ("Drucker-stable nominal strains", "extrapolated", "volumetric: D1",
                     "temperature [K]", "in K too", "between rows"):
        assert expected in text, expected


def test_each_row_is_the_card_at_its_condition(client: TestClient, hot) -> None:
    """A row is fitted to the model's view at its temperature: the same constants as the
    card exported at that one condition (same grid, same form)."""
    query = {"format": "json", "form": "yeoh", "quantiles": "0.1", "points": 41}
    over = get(client, covariates="rate:0.05", over="temperature", **query).json()
    for card in over["cards"]:
        for row in card["rows"]:
            at = get(client, covariates=f"temperature:{row['temperature']!r},rate:0.05",
                     **query).json()
            single = next(c for c in at["cards"] if c["column"] == card["column"])
            assert row["coefficients"] == single["coefficients"]
            assert row["d"] == single["d"] and row["fit_error"] == single["fit_error"]


def test_auto_takes_one_form_for_every_row(client: TestClient, hot) -> None:
    body = get(client, format="json", form="auto", curves=2, seed=4, **OVER).json()
    temperature = np.array(body["temperature"])
    text = get(client, format="calculix", curves=2, seed=4, **OVER).text
    for card in body["cards"]:
        # The smallest largest-row error among the forms stable at every row and between
        # them; failing that, stable at every row; failing that, any.
        errors = {n: c["fit_error"] for n, c in card["candidates"].items()}
        pools = [[n for n, c in card["candidates"].items() if c["stable_over_range"]],
                 [n for n in errors if all(row["candidates"][n]["stable_over_range"]
                                           for row in card["rows"])],
                 list(errors)]
        pool = next(pool for pool in pools if pool)
        assert card["form"] == min(pool, key=errors.get)
        if pool is pools[2]:
            assert f"({card['column']}): {card['keyword']} over temperature [K], 3 rows " \
                "(form=auto: NO form is Drucker-stable" in text
        for name, candidate in card["candidates"].items():
            assert candidate["fit_error"] == max(row["candidates"][name]["fit_error"]
                                                 for row in card["rows"])
        form = forms.FORMS[card["form"]]
        for row in card["rows"]:
            # Each row's stated error: its card (with D) against that condition's table.
            at = temperature == row["temperature"]
            strain = np.array(body["strain"])[at]
            stress = forms.compressible_uniaxial_stress(
                form, list(row["coefficients"].values()), row["d"], 1 + strain)
            error = np.max(np.abs(stress - np.array(body[card["column"]])[at])
                           / np.array(body["total_sd"])[at])
            assert error == pytest.approx(row["fit_error"], rel=1e-9)
        assert card["fit_error"] == max(row["fit_error"] for row in card["rows"])
        if pool is pools[0]:
            assert card["unstable_between"] == [] and card["between_departure"] <= 0.25
        print(f"{card['material']}: {card['keyword']}, row errors "
              + ", ".join(f"{row['fit_error']:.3f}" for row in card["rows"])
              + f" total SD, between-rows departure {card['between_departure']}")


def test_the_file_says_when_the_interpolated_constants_are_unstable(client: TestClient,
                                                                     hot) -> None:
    """An asked Ogden N=3 card's rows have exponents far apart; the solver's interpolation
    between them is stated unstable, or its stress departure from the rows' is large."""
    card = get(client, format="json", form="ogden_n3", **OVER).json()["cards"][0]
    text = " ".join(line[2:].strip() for line in get(
        client, format="calculix", form="ogden_n3", **OVER).text.splitlines())
    departure = card["between_departure"]
    if departure is None:  # the halfway constants leave the stress undefined somewhere
        assert "give NO finite stress at some stretch" in text
    else:
        assert f"up to {departure:.3g} total SD from the mean" in text
    if card["unstable_between"]:
        assert "WARNING: the interpolated constants are NOT Drucker-stable" in text
    # The departure is measured: interpolate halfway by hand.
    form = forms.FORMS["ogden_n3"]
    body = get(client, format="json", form="ogden_n3", **OVER).json()
    stretch = 1 + np.array(body["strain"])[np.array(body["temperature"]) == TEMPERATURES[0]]
    sd = [np.array(body["total_sd"])[np.array(body["temperature"]) == t] for t in TEMPERATURES]
    worst = 0.0
    for i, (a, b) in enumerate(zip(card["rows"], card["rows"][1:], strict=False)):
        va, vb = np.array(list(a["coefficients"].values())), np.array(list(b["coefficients"]
                                                                          .values()))
        da, db = np.array(a["d"]), np.array(b["d"])
        half = forms.compressible_uniaxial_stress(form, (va + vb) / 2, (da + db) / 2, stretch)
        mean = 0.5 * (forms.compressible_uniaxial_stress(form, va, da, stretch)
                      + forms.compressible_uniaxial_stress(form, vb, db, stretch))
        with np.errstate(all="ignore"):
            off = float(np.max(np.abs(half - mean) / (0.5 * (sd[i] + sd[i + 1]))))
        worst = max(worst, off if np.isfinite(off) else np.inf)
    assert worst == (np.inf if departure is None else pytest.approx(departure, rel=1e-9))
    print(f"ogden_n3 over temperature: between-rows departure {worst:.3g} total SD, "
          f"unstable between {card['unstable_between']}")


def test_json_rows_over_any_covariate(client: TestClient, hot) -> None:
    """JSON has no temperature column: its rows carry the covariate's value, whichever."""
    body = get(client, format="json", form="neo_hooke", covariates="temperature:296.15",
               over="rate", points=21).json()
    card = body["cards"][0]
    assert card["over"] == "rate" and card["over_unit"] == "1/s"
    assert [row["rate"] for row in card["rows"]] == [0.01, 0.1]


@pytest.mark.parametrize(("query", "field", "status", "says"), [
    ({"format": "calculix", "covariates": "temperature:296.15", "over": "rate"}, "over", 422,
     "rate [1/s] is not a temperature"),
    ({"format": "abaqus", "form": "yeoh", "covariates": "temperature:296.15", "over": "rate"},
     "over", 422, "CalculiX reads no field variables"),
    ({"format": "calculix", "covariates": "rate:0.05",
      "over": "temperature:300,300.0000000001"}, "over", 422, "9 significant digits"),
    ({"format": "calculix", "covariates": "rate:0.05", "over": "temperature:280,300,320",
      "curves": 100, "seed": 1}, "over", 413, "303 fitted rows; the limit is 256"),
    ({"format": "calculix", "covariates": "rate:0.05", "over": "temperature",
      "curves": 300, "seed": 1}, "curves", 413, "the limit is 256"),
])
def test_bad_card_over_queries_name_the_field(client: TestClient, hot, query, field: str,
                                              status: int, says: str) -> None:
    response = get(client, **query)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field, error
    assert says in error["message"]


def test_abaqus_cards_over_temperature_are_the_calculix_ones(client: TestClient, hot) -> None:
    """The same *HYPERELASTIC syntax: only the fragment's header names the solver."""
    calculix = get(client, format="calculix", form="yeoh", **OVER).text.splitlines()
    abaqus = get(client, format="abaqus", form="yeoh", **OVER).text.splitlines()
    assert any(line.startswith("** Abaqus fragment") for line in abaqus)

    def cards(lines: list[str]) -> list[str]:
        return lines[next(i for i, line in enumerate(lines) if line.startswith("** card")):]

    assert cards(abaqus) == cards(calculix)
    assert "*HYPERELASTIC, YEOH" in abaqus and "MARLOW" not in "\n".join(abaqus)
