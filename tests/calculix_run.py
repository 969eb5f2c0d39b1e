"""Runs CalculiX (Debian's `ccx`, 2.20) on a one-element model for the card tests: a unit
C3D8 cube under uniaxial load with free lateral faces, NLGEOM, the x = 1 face moved to a
nominal strain in equal increments; the total reaction force on that face at each
increment is the nominal stress (the undeformed face has unit area).

Without the binary the tests that need it are skipped, except under
SURROGATE_REQUIRE_CALCULIX=1 (set by `.ci/run`), where its absence is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

_NODES = [(1, 0, 0, 0), (2, 1, 0, 0), (3, 1, 1, 0), (4, 0, 1, 0),
          (5, 0, 0, 1), (6, 1, 0, 1), (7, 1, 1, 1), (8, 0, 1, 1)]
_TOTAL = re.compile(r"total force \(fx,fy,fz\) for set LOAD and time\s+(\S+)\s*\n\s*\n?"
                    r"\s*(\S+)\s+(\S+)\s+(\S+)")


def ccx_binary() -> str:
    """The ccx path; skips (or fails under SURROGATE_REQUIRE_CALCULIX=1) without it."""
    path = shutil.which("ccx")
    if path is None:
        if os.environ.get("SURROGATE_REQUIRE_CALCULIX") == "1":
            pytest.fail("CalculiX (ccx) not found (scripts/system-deps.sh --ci installs the "
                        "Debian calculix-ccx package)")
        pytest.skip("CalculiX (ccx) not installed")
    return path


def one_element_deck(material: list[str], name: str, strain: float, increments: int,
                     temperature: float | None = None) -> str:
    """The deck; with `temperature`, every node at that temperature from the start
    (*INITIAL CONDITIONS) and through the step (*TEMPERATURE): without an initial
    temperature CalculiX takes the first row of temperature-dependent constants."""
    nodes = "\n".join(f"{n}, {x}, {y}, {z}" for n, x, y, z in _NODES)
    initial = step = ""
    if temperature is not None:
        initial = ("*NSET, NSET=NALL\n1, 2, 3, 4, 5, 6, 7, 8\n"
                   f"*INITIAL CONDITIONS, TYPE=TEMPERATURE\nNALL, {temperature!r}\n")
        step = f"*TEMPERATURE\nNALL, {temperature!r}\n"
    return f"""*NODE
{nodes}
*ELEMENT, TYPE=C3D8, ELSET=CUBE
1, 1, 2, 3, 4, 5, 6, 7, 8
*NSET, NSET=X0
1, 4, 5, 8
*NSET, NSET=LOAD
2, 3, 6, 7
*NSET, NSET=Y0
1, 2, 5, 6
*NSET, NSET=Z0
1, 2, 3, 4
{chr(10).join(material)}
*SOLID SECTION, ELSET=CUBE, MATERIAL={name}
{initial}*STEP, NLGEOM, INC=1000
*CONTROLS, PARAMETERS=FIELD
1e-7, 1e-7
*STATIC, DIRECT
{1.0 / increments}, 1.0
{step}*BOUNDARY
X0, 1, 1, 0.0
Y0, 2, 2, 0.0
Z0, 3, 3, 0.0
LOAD, 1, 1, {strain!r}
*NODE PRINT, NSET=LOAD, TOTALS=ONLY
RF
*END STEP
"""


def uniaxial_reaction(material: list[str], name: str, strain: float, increments: int,
                      workdir: Path, temperature: float | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(nominal strain, reaction force = nominal stress) at each increment of a ramp to
    `strain`, from ccx (at `temperature` when given). `material` holds the *MATERIAL
    block (its comment lines too)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cube.inp").write_text(one_element_deck(material, name, strain, increments,
                                                       temperature))
    result = subprocess.run([ccx_binary(), "-i", "cube"], cwd=workdir, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    dat = workdir / "cube.dat"
    assert result.returncode == 0 and dat.exists(), result.stdout[-2000:] + result.stderr
    assert "*ERROR" not in result.stdout, result.stdout[-2000:]
    rows = [(float(t), float(fx)) for t, fx, _, _ in _TOTAL.findall(dat.read_text())]
    assert rows, dat.read_text()[:2000]
    time, force = np.array(rows).T
    return time * strain, force
