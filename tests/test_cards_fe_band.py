"""The FE band example (examples/fe_band.py) in a small version: its material energies
are the cards' own (homogeneous compression between frictionless plates gives the card's
uniaxial stress times the area, in FElupe and in CalculiX), and the band of a few
sampled materials of a rubber-like model brackets the mean material."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.export import forms
from service.export.cards import material_block
from service.registry.writes import register, set_alias
from tests.calculix_run import ccx_binary
from tests.rubber_model import rubber_artifact

pytest.importorskip("felupe")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import fe_band  # noqa: E402

URL = "/v1/models/rubber/export"
SMALL = fe_band.Part(radial=4, axial=4, steps=10)


@pytest.fixture
def rubber(session: Session) -> None:
    register(session, "rubber", rubber_artifact().to_bytes(), actor="test")
    set_alias(session, "rubber", "production", 1, actor="test")
    session.commit()


def export(client: TestClient, fmt: str, **query):
    response = client.get(URL, params={"format": fmt, **fe_band.STABLE, **query})
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("form", ["neo_hooke", "polynomial_n2", "yeoh", "ogden_n2",
                                  "arruda_boyce"])
def test_homogeneous_compression_gives_the_cards_stress(client: TestClient, rubber,
                                                        form: str) -> None:
    card = export(client, "json", form=form).json()["cards"][0]
    part = fe_band.Part(radial=2, axial=2, steps=6, bonded=False)
    displacement, force = fe_band.felupe_curve(card, part)
    stretch = 1 - displacement / (fe_band.HEIGHT / 2)
    stress = forms.compressible_uniaxial_stress(forms.FORMS[form],
                                                list(card["coefficients"].values()),
                                                card["d"], stretch)
    area = np.pi * fe_band.RADIUS**2
    np.testing.assert_allclose(force[1:], -stress[1:] * area, rtol=1e-4)  # Newton tol


def test_small_band_and_its_calculix_cross_check(client: TestClient, rubber) -> None:
    query = {"form": "auto", "curves": 4, "seed": 5}
    body = export(client, "json", **query).json()
    result = fe_band.band(body, SMALL)
    print(fe_band.summary(result))
    assert result["materials"] == 4 and not result["failed"]
    end = result["displacement"][-1]
    assert end == pytest.approx(fe_band.COMPRESSION * fe_band.HEIGHT / 2)
    assert np.all(result["q05"] <= result["band_mean"] + 1e-9)
    assert np.all(result["band_mean"] <= result["q95"] + 1e-9)
    assert np.all(np.diff(result["mean_material"]) > 0)  # compression needs ever more force
    ccx_binary()
    text = export(client, "calculix", **query).text
    rows = fe_band.cross_check(body, text, result, SMALL, ["mean", "curve_1"])
    for row in rows:
        for share in (0.5, 1.0):
            felupe, ccx = row[share]
            print(f"{row['column']} at {share * 30:.0f}%: FElupe {felupe:.1f} N, CalculiX "
                  f"{ccx:.1f} N")
            # Same geometry and card: the two codes agree to discretisation (docs/fe_band.md)
            assert abs(ccx / felupe - 1) < 0.15


def test_frictionless_calculix_gives_the_cards_stress(client: TestClient, rubber,
                                                      tmp_path: Path) -> None:
    ccx_binary()
    card = export(client, "json", form="ogden_n2").json()["cards"][0]
    text = export(client, "calculix", form="ogden_n2").text
    part = fe_band.Part(radial=2, axial=2, steps=6, bonded=False)
    displacement, force = fe_band.calculix_curve(
        card, material_block(text, card["material"]), part, tmp_path)
    stretch = 1 - displacement / (fe_band.HEIGHT / 2)
    stress = forms.compressible_uniaxial_stress(forms.FORMS["ogden_n2"],
                                                list(card["coefficients"].values()),
                                                card["d"], stretch)
    np.testing.assert_allclose(force[1:], -stress[1:] * np.pi * fe_band.RADIUS**2, rtol=1e-3)
