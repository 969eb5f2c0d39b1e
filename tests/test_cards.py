"""Fitted hyperelastic cards: the forms' stresses against closed forms, Drucker stability,
the card files against the CalculiX 2.20 manual's layouts (read by a reader written from
the manual), the JSON coefficients, what each card states (fit error, stable ranges,
extrapolated modes) checked on a curve built to be unstable, and bad queries.
CalculiX itself runs in tests/test_cards_calculix.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.export import forms
from service.export.fit import SCAN
from service.registry.writes import register, set_alias
from tests.rubber_model import rubber_artifact
from training.data import mooney_rivlin_stress, ogden_stress

URL = "/v1/models/{}/export"
# Values per *HYPERELASTIC data line set, from the CalculiX 2.20 manual (without the
# temperature): constants then D terms; 8 values per line at most.
MANUAL_LAYOUT = {
    "NEOHOOKE": ["C10", "D1"], "MOONEY-RIVLIN": ["C10", "C01", "D1"],
    "POLYNOMIAL,N=1": ["C10", "C01", "D1"],
    "POLYNOMIAL,N=2": ["C10", "C01", "C20", "C11", "C02", "D1", "D2"],
    "POLYNOMIAL,N=3": ["C10", "C01", "C20", "C11", "C02", "C30", "C21", "C12", "C03", "D1",
                       "D2", "D3"],
    "REDUCEDPOLYNOMIAL,N=1": ["C10", "D1"], "REDUCEDPOLYNOMIAL,N=2": ["C10", "C20", "D1", "D2"],
    "REDUCEDPOLYNOMIAL,N=3": ["C10", "C20", "C30", "D1", "D2", "D3"],
    "YEOH": ["C10", "C20", "C30", "D1", "D2", "D3"],
    "OGDEN,N=1": ["mu1", "alpha1", "D1"],
    "OGDEN,N=2": ["mu1", "alpha1", "mu2", "alpha2", "D1", "D2"],
    "OGDEN,N=3": ["mu1", "alpha1", "mu2", "alpha2", "mu3", "alpha3", "D1", "D2", "D3"],
    "ARRUDA-BOYCE": ["mu", "lambda_m", "D"],
}


def read_cards(text: str) -> dict[str, tuple[str, list[float], list[str]]]:
    """material -> (*HYPERELASTIC parameters without blanks, values, comment lines above),
    by the input rules: '**' comments, '*' keywords, comma-separated data, lines of at most
    132 characters, each value within 20 characters."""
    cards: dict[str, tuple[str, list[float], list[str]]] = {}
    comments: list[str] = []
    name = keyword = None
    for line in text.splitlines():
        assert len(line) <= 132, line
        if line.startswith("**"):
            comments.append(line[2:].strip())
            continue
        if line.startswith("*"):
            parts = [p.strip().upper().replace(" ", "") for p in line[1:].split(",")]
            if parts[0] == "MATERIAL":
                name = parts[1].split("=")[1]
                cards[name] = ("", [], comments)
                comments = []
            else:
                assert parts[0] == "HYPERELASTIC" and name is not None
                keyword = ",".join(parts[1:])
                cards[name] = (keyword, [], cards[name][2])
            continue
        fields = [f.strip() for f in line.split(",")]
        assert len(fields) <= 8 and all(len(f) <= 20 for f in fields), line
        assert name is not None and keyword is not None
        cards[name][1].extend(float(f) for f in fields)
    return cards


@pytest.fixture
def models(session: Session) -> None:
    for name, artifact in (("rubber", rubber_artifact()),
                           ("soft", rubber_artifact(softening=0.15))):
        register(session, name, artifact.to_bytes(), actor="test")
        set_alias(session, name, "production", 1, actor="test")
    session.commit()


def get(client: TestClient, name: str = "rubber", **query):
    return client.get(URL.format(name), params=query)


def test_form_stresses_match_the_closed_forms() -> None:
    stretch = np.linspace(0.5, 1.5, 41)
    mr = forms.FORMS["mooney_rivlin"]
    np.testing.assert_allclose(forms.nominal_stress(mr, [0.3, 0.05], stretch),
                               mooney_rivlin_stress(stretch, 0.3, 0.05), rtol=1e-12)
    w1, w2 = 0.3, 0.05  # Mooney-Rivlin: W1 = C10, W2 = C01
    np.testing.assert_allclose(forms.nominal_stress(mr, [w1, w2], stretch, "equibiaxial"),
                               2 * (stretch - stretch**-5) * (w1 + stretch**2 * w2), rtol=1e-12)
    np.testing.assert_allclose(forms.nominal_stress(mr, [w1, w2], stretch, "planar"),
                               2 * (stretch - stretch**-3) * (w1 + w2), rtol=1e-12)
    ogden = forms.FORMS["ogden_n1"]
    np.testing.assert_allclose(forms.nominal_stress(ogden, [0.4, 3.0], stretch),
                               ogden_stress(stretch, 0.4, 3.0), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(forms.FORMS))
def test_initial_shear_modulus_is_the_small_strain_slope(name: str) -> None:
    form = forms.FORMS[name]
    values = {forms.POLYNOMIAL: [0.3, 0.05, 0.02, 0.01, 0.004, 0.002, 0.001, 0.001, 0.001],
              forms.OGDEN: [0.3, 2.5, 0.05, -2.0, 0.01, 5.0],
              forms.ARRUDA_BOYCE: [0.5, 3.0]}[form.family][:len(form.coefficients)]
    h = 1e-6
    slope = (forms.nominal_stress(form, values, np.array([1 + h]))
             - forms.nominal_stress(form, values, np.array([1 - h]))) / (2 * h)
    # Incompressible uniaxial: E0 = 3 mu0.
    assert slope[0] / 3 == pytest.approx(forms.initial_shear_modulus(form, values), rel=1e-6)


def test_drucker_stability() -> None:
    neo = forms.FORMS["neo_hooke"]
    strain = np.linspace(SCAN[0], SCAN[1], 500)
    for mode in forms.MODES:
        assert forms.drucker_stable(neo, [0.3], 1 + strain, mode).all()
        assert not forms.drucker_stable(neo, [-0.3], 1 + strain, mode).any()
    # A Yeoh with a negative C20 softens: unstable in uniaxial tension from where the
    # true stress l P stops rising with log strain (a necessary condition of Drucker's).
    yeoh, values = forms.FORMS["yeoh"], [0.3, -0.03, 0.0005]
    stretch = np.linspace(1.0, 3.0, 20001)
    true = stretch * forms.nominal_stress(yeoh, values, stretch)
    falls = stretch[1:][np.diff(true) <= 0][0]
    stable = forms.drucker_stable(yeoh, values, stretch, "uniaxial")
    first_unstable = stretch[~stable][0]
    assert first_unstable <= falls + 1e-4


def test_compressible_card_tends_to_the_incompressible_one() -> None:
    yeoh, values = forms.FORMS["yeoh"], np.array([0.3, -0.01, 0.002])
    stretch = np.linspace(0.5, 1.5, 21)
    incompressible = forms.nominal_stress(yeoh, values, stretch)
    gaps = [np.max(np.abs(forms.compressible_uniaxial_stress(
        yeoh, values, np.full(3, 2 / (ratio * 0.6)), stretch) - incompressible))
        for ratio in (100, 1000, 100000)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-5


@pytest.mark.parametrize("name", sorted(forms.FORMS))
def test_calculix_cards_follow_the_manual_layout(client: TestClient, models,
                                                 name: str) -> None:
    response = get(client, format="calculix", form=name, quantiles="0.1", curves=1, seed=3)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].endswith('rubber-v1.inp"')
    cards = read_cards(response.text)
    assert list(cards) == ["RUBBER_V1_MEAN", "RUBBER_V1_Q0P1", "RUBBER_V1_CURVE_1"]
    form = forms.FORMS[name]
    body = get(client, format="json", form=name, quantiles="0.1", curves=1, seed=3).json()
    for (keyword, values, comments), card in zip(cards.values(), body["cards"], strict=True):
        assert keyword == form.keyword.replace(" ", "")
        layout = MANUAL_LAYOUT[keyword]
        assert len(values) == len(layout)
        names = [*card["coefficients"], *(f"D{i + 1}" for i in range(len(card["d"])))]
        if keyword == "ARRUDA-BOYCE":
            names[-1] = "D"
        assert names == layout
        np.testing.assert_allclose(values, [*card["coefficients"].values(), *card["d"]],
                                   rtol=1e-15)
        text = " ".join(comments)
        for expected in ("fit error:", "total SD", "Drucker-stable nominal strains",
                         "uniaxial", "equibiaxial", "planar", "extrapolated", "volumetric: D1"):
            assert expected in text, expected


def test_json_coefficients_reproduce_the_stated_fit_error(client: TestClient, models) -> None:
    body = get(client, format="json", form="auto", curves=20, seed=4).json()
    strain = np.array(body["strain"])
    sd = np.array(body["total_sd"])
    errors = []
    for card in body["cards"]:
        form = forms.FORMS[card["form"]]
        stress = forms.compressible_uniaxial_stress(
            form, list(card["coefficients"].values()), card["d"], 1 + strain)
        error = np.max(np.abs(stress - np.array(body[card["column"]])) / sd)
        assert error == pytest.approx(card["fit_error"], rel=1e-9)
        errors.append(error)
        # auto: the smallest error among the candidates stable over the range
        stable = {n: c["fit_error"] for n, c in card["candidates"].items()
                  if c["stable_over_range"]}
        assert card["stable_over_range"] and card["form"] == min(stable, key=stable.get)
        assert card["initial_bulk_modulus"] == pytest.approx(
            1000 * card["initial_shear_modulus"], rel=1e-12)
        assert card["d"][0] == pytest.approx(2 / card["initial_bulk_modulus"], rel=1e-8)
    print(f"rubber model, form=auto: mean {errors[0]:.3f}, 20 curves max {max(errors[1:]):.3f}"
          f" median {np.median(errors[1:]):.3f} total SD")
    assert errors[0] <= 0.25


def test_volumetric_setting(client: TestClient, models) -> None:
    body = get(client, format="json", form="neo_hooke", bulk_modulus=500).json()
    assert body["cards"][0]["d"] == [pytest.approx(2 / 500)]
    card = get(client, format="json", form="neo_hooke", bulk_ratio=50).json()["cards"][0]
    assert card["d"][0] == pytest.approx(2 / (50 * card["initial_shear_modulus"]), rel=1e-8)
    assert "initial Poisson ratio 0.49950" in get(client, format="calculix").text


def test_abaqus_takes_a_form_and_keeps_marlow_without(client: TestClient, models) -> None:
    fitted = get(client, format="abaqus", form="yeoh").text
    assert "*HYPERELASTIC, YEOH" in fitted and "Abaqus fragment" in fitted
    assert "MARLOW" not in fitted
    assert "*HYPERELASTIC, MARLOW" in get(client, format="abaqus").text


def test_statements_on_a_curve_built_to_be_unstable(client: TestClient, models) -> None:
    """The soft model's tension branch stops rising near strain 0.3: a card that follows it
    is unstable inside the exported range, and says so."""
    forced = get(client, "soft", format="json", form="polynomial_n3").json()["cards"][0]
    assert not forced["stable_over_range"]
    text = get(client, "soft", format="calculix", form="polynomial_n3").text
    assert "WARNING: NOT stable over the exported range" in text
    # The stated uniaxial limit: where the card's own true stress stops rising, at most.
    form = forms.FORMS["polynomial_n3"]
    values = list(forced["coefficients"].values())
    stretch = np.linspace(1.0, 1.5, 5001)
    true = stretch * forms.nominal_stress(form, values, stretch)
    falls = stretch[1:][np.diff(true) <= 0][0] - 1
    upper = forced["stable_strain_ranges"]["uniaxial"][1]
    assert upper <= falls + 0.01 and upper < 0.5
    auto = get(client, "soft", format="calculix").text
    chosen = get(client, "soft", format="json", form="auto").json()["cards"][0]
    if chosen["stable_over_range"]:
        # A stable card cannot follow the falling branch: its error is large and stated.
        assert chosen["fit_error"] > 0.25 and "NOT MET: no stable form reaches it" in auto
    else:
        assert "NO form is Drucker-stable over the exported range" in auto


def test_extrapolated_modes_are_named(client: TestClient, models) -> None:
    both = " ".join(read_cards(get(client, format="calculix").text)["RUBBER_V1_MEAN"][2])
    # Compression to 0.5 is equibiaxial tension to 0.5^-1/2 - 1; tension to 1.5 is
    # equibiaxial compression to 1.5^-1/2 - 1.
    assert "equibiaxial -0.184 to 0.414 is the same deformation as the fitted" in both
    assert "planar at every strain" in both and "tension only" not in both
    tension = " ".join(read_cards(get(client, format="calculix", strain_min=0,
                                      form="mooney_rivlin").text)["RUBBER_V1_MEAN"][2])
    assert "an I2 dependence is not identified from uniaxial tension alone" in tension
    assert "equibiaxial -0.184 to 0 is the same" in tension


@pytest.mark.parametrize(("query", "field", "status"), [
    ({"format": "calculix", "form": "hooke"}, "form", 422),
    ({"format": "csv", "form": "yeoh"}, "form", 422),
    ({"format": "lsdyna", "form": "auto"}, "form", 422),
    ({"format": "csv", "bulk_ratio": 100}, "bulk_ratio", 422),
    ({"format": "calculix", "bulk_ratio": 100, "bulk_modulus": 5}, "bulk_modulus", 422),
    ({"format": "calculix", "bulk_ratio": 0.5}, "bulk_ratio", 422),
    ({"format": "calculix", "strain_min": -1.0}, "strain_min", 422),
    ({"format": "calculix", "curves": 300}, "curves", 413),
])
def test_bad_card_queries_name_the_parameter(client: TestClient, models, query, field: str,
                                             status: int) -> None:
    response = get(client, **query)
    assert response.status_code == status, response.text
    assert field in response.json()["error"]["details"][0].get("field", ""), response.json()


@pytest.mark.parametrize("name", ["ogden_n1", "ogden_n2", "ogden_n3", "arruda_boyce"])
def test_the_searchs_closed_form_stresses_equal_the_forms(name: str) -> None:
    from service.export.fit import _basis, _values

    form = forms.FORMS[name]
    shape = np.array([2.5, -1.5, 6.0][:form.terms]) if form.family == forms.OGDEN \
        else np.array([2.7])
    linear = np.array([0.3, 0.02, 0.001][:form.linear])
    stretch = np.linspace(0.5, 1.5, 11)
    np.testing.assert_allclose(_basis(form, shape, stretch) @ linear,
                               forms.nominal_stress(form, _values(form, linear, shape),
                                                    stretch), rtol=1e-12)


def test_auto_keeps_an_unstable_best_fit_stable(client: TestClient, models) -> None:
    """On the softening curve the free polynomial N=3 fit is unstable in the range; auto's
    candidate of the same form is fitted under Drucker's condition and is stable."""
    free = get(client, "soft", format="json", form="polynomial_n3").json()["cards"][0]
    auto = get(client, "soft", format="json").json()
    assert not free["stable_over_range"]
    candidate = get(client, "soft", format="json", form="auto").json()["cards"][0][
        "candidates"]["polynomial_n3"]
    assert candidate["stable_over_range"]
    assert candidate["fit_error"] >= free["fit_error"]
    assert "cards" not in auto  # json without form: the table only
