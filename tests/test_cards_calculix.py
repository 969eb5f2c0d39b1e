"""Every exported card in the real solver: CalculiX 2.20 (Debian `ccx`) runs a one-element
C3D8 model under uniaxial tension and compression (NLGEOM) with each card, and
- its reaction force equals the card's own analytic nominal stress (with its D terms,
  lateral faces free) to relative 1e-3;
- it is within the card's stated fit error of the served curve at strains across the
  range (plus the table's interpolation error, 1e-3 total SD).
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
from service.registry.writes import register, set_alias
from tests.calculix_run import ccx_binary, uniaxial_reaction
from tests.rubber_model import rubber_artifact

URL = "/v1/models/rubber/export"
_INTERPOLATION = 2e-3  # the table's interpolation error (<= 1e-3) and ccx's 7 digits


@pytest.fixture
def rubber(session: Session) -> None:
    register(session, "rubber", rubber_artifact().to_bytes(), actor="test")
    set_alias(session, "rubber", "production", 1, actor="test")
    session.commit()


def check_in_ccx(client: TestClient, query: dict, workdir: Path) -> list[str]:
    """Runs every card of one export in ccx; returns a line of figures per card."""
    text = client.get(URL, params={"format": "calculix", **query}).text
    body = client.get(URL, params={"format": "json", **query}).json()
    grid, sd = np.array(body["strain"]), np.array(body["total_sd"])
    report = []
    for card in body["cards"]:
        form = forms.FORMS[card["form"]]
        values = list(card["coefficients"].values())
        worst_analytic = worst_served = 0.0
        for end in (0.5, -0.5):
            strain, force = uniaxial_reaction(material_block(text, card["material"]),
                                              card["material"], end, 5,
                                              workdir / card["material"] / str(end))
            analytic = forms.compressible_uniaxial_stress(form, values, card["d"], 1 + strain)
            worst_analytic = max(worst_analytic, float(np.max(np.abs(force / analytic - 1))))
            served = np.interp(strain, grid, body[card["column"]])
            off = np.abs(force - served) / np.interp(strain, grid, sd)
            worst_served = max(worst_served, float(np.max(off)))
        assert worst_analytic <= 1e-3, (card["material"], worst_analytic)
        assert worst_served <= card["fit_error"] + _INTERPOLATION, (card["material"],
                                                                    worst_served)
        report.append(f"{card['material']:>22} {card['keyword']:<24} ccx vs analytic "
                      f"{worst_analytic:.1e}, ccx vs served {worst_served:.3f} SD "
                      f"(stated fit error {card['fit_error']:.3f})")
    return report


@pytest.mark.parametrize("name", sorted(forms.FORMS))
def test_every_form_in_calculix(client: TestClient, rubber, tmp_path: Path, name: str) -> None:
    ccx_binary()
    for line in check_in_ccx(client, {"form": name}, tmp_path):
        print(line)


def test_auto_cards_of_quantiles_and_curves_in_calculix(client: TestClient, rubber,
                                                         tmp_path: Path) -> None:
    ccx_binary()
    lines = check_in_ccx(client, {"form": "auto", "quantiles": "0.05,0.95", "curves": 3,
                                  "seed": 2}, tmp_path)
    assert len(lines) == 6
    print("\n".join(lines))
