"""Material labels shared by the input-file formats."""

from __future__ import annotations

import re

# Abaqus and CalculiX labels: at most 80 characters.
MAX_LABEL = 80


def material_label(model: str, version: int, column: str) -> str:
    """<MODEL>_V<version>_<COLUMN>: letters, digits and underscores only (no quoting
    needed), starting with a letter; q0.05 -> Q0P05, curve_3 -> CURVE_3."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", model).upper()
    if not base[:1].isalpha():
        base = "M" + base
    suffix = f"_V{version}_" + column.upper().replace(".", "P").replace("-", "M")
    return base[: MAX_LABEL - len(suffix)] + suffix
