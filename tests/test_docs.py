"""The README's layout table names paths that exist, and every top-level package folder
of the service is in it, so the map a newcomer reads matches the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_paths() -> list[str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths = []
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        first_cell = row.split("|")[1]
        names = re.findall(r"`([^`]+)`", first_cell)
        folder = ""
        for name in names:  # "`service/main.py`, `settings.py`": siblings of the first
            if "/" in name.rstrip("/"):
                folder = name.rsplit("/", 1)[0] + "/" if not name.endswith("/") else ""
                paths.append(name)
            else:
                paths.append(folder + name)
    return paths


def test_every_path_in_the_layout_table_exists() -> None:
    paths = layout_paths()
    assert len(paths) > 10
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing


def test_every_service_package_is_in_the_layout_table() -> None:
    listed = " ".join(layout_paths())
    packages = [p.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "service").iterdir()
                if (p / "__init__.py").exists()]
    assert packages
    assert not [p for p in packages if p not in listed], packages
