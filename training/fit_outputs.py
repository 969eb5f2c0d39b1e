"""What `surrogate-train fit` and `fit-many` write besides the registered version: the
default report folder and the InferenceData uploaded with an admin-API registration."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any


def default_report_dir(name: str) -> Path:
    """A fresh folder per fit under var/reports/NAME (the manifest records which)."""
    return Path("var") / "reports" / name / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def inference_data_bytes(result: Any, written_to: Path | None = None) -> bytes:
    """A fit result's ArviZ InferenceData as netCDF bytes (read back from `written_to` when
    the user already wrote it there)."""
    if written_to is not None:
        return written_to.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fit.nc"
        result.inference_data.to_netcdf(str(path))
        return path.read_bytes()
