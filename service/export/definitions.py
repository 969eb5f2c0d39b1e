"""What the model's strain and stress are, and their conversion to the nominal
(engineering) measures that Abaqus' test data and LS-DYNA's rubber curves require.

The manifest names the data's columns (input_name, output_name) and units, nothing more,
so the definitions are read from those names:
- strain: a name containing "log", "true" or "hencky" is the logarithmic strain e
  (nominal = exp(e) - 1); "stretch" is the stretch ratio l (nominal = l - 1); anything else
  (e.g. "strain", "engineering_strain", "nominal_strain") is taken as nominal strain.
- stress: a name containing "true" or "cauchy" is the Cauchy (true) stress s; under
  uniaxial load of an incompressible material the cross-section shrinks to A0 / l, so the
  nominal stress is s / l with l = 1 + nominal strain. Anything else (e.g. "stress",
  "engineering_stress", "nominal_stress", "first_piola") is taken as nominal stress.
Units are passed through unchanged: the tables are in the data's own units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def _get(node: Any, key: str) -> Any:
    """manifest[key] for a dict, manifest.key for a typed manifest."""
    return node[key] if isinstance(node, dict) else getattr(node, key)


@dataclass(frozen=True)
class Definitions:
    input_name: str
    input_unit: str
    output_name: str
    output_unit: str

    @classmethod
    def from_manifest(cls, manifest: Any) -> Definitions:
        arch = _get(manifest, "architecture")
        return cls(str(_get(arch, "input_name")), str(_get(arch, "input_unit")),
                   str(_get(arch, "output_name")), str(_get(arch, "output_unit")))

    @property
    def strain_kind(self) -> str:
        name = self.input_name.lower()
        if any(word in name for word in ("log", "true", "hencky")):
            return "logarithmic"
        return "stretch" if "stretch" in name else "nominal"

    @property
    def stress_kind(self) -> str:
        name = self.output_name.lower()
        return "true" if ("true" in name or "cauchy" in name) else "nominal"

    def nominal_strain(self, strain: np.ndarray) -> np.ndarray:
        kind = self.strain_kind
        if kind == "logarithmic":
            return np.expm1(strain)
        if kind == "stretch":
            return strain - 1.0
        return strain

    def nominal_stress(self, stress: np.ndarray, strain: np.ndarray) -> np.ndarray:
        if self.stress_kind == "true":
            return stress / (1.0 + self.nominal_strain(strain))
        return stress

    def describe(self) -> str:
        """One line for the file headers: what was converted, and how."""
        strain = {"nominal": f"{self.input_name!r} taken as nominal strain (unchanged)",
                  "logarithmic": f"{self.input_name!r} is logarithmic: nominal = exp(e) - 1",
                  "stretch": f"{self.input_name!r} is a stretch: nominal = stretch - 1",
                  }[self.strain_kind]
        stress = (f"{self.output_name!r} taken as nominal stress (unchanged)"
                  if self.stress_kind == "nominal" else
                  f"{self.output_name!r} is true stress: nominal = true / (1 + nominal "
                  "strain), incompressible uniaxial")
        return f"{strain}; {stress}"
