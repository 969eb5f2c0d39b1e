"""The import contracts in pyproject.toml ([tool.importlinter]) hold, and they can fail:
the same contracts run on a copy of the tree with one upward import added break and
name it. docs/architecture.md describes the layers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the packages under `tree` (first on the path, ahead of the
    installed ones), with the contracts of its pyproject.toml; no cache written."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "service: one direction, entry points down to the artifact KEPT" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(tmp_path: Path) -> None:
    """The pipeline importing the HTTP layer, lazily (inside a function), is caught: the
    layers contract names the import, and the transport-free contract names what it
    drags in (FastAPI)."""
    skip = shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "static", "templates")
    for package in ("service", "training"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    pipeline = tmp_path / "service" / "prediction" / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + (
        "\n\ndef _upward() -> object:\n"
        "    from service.api import deps\n"
        "    return deps\n"))

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "service: one direction, entry points down to the artifact BROKEN" in result.stdout
    assert "service.prediction is not allowed to import service.api" in result.stdout
    assert "service.prediction.pipeline -> service.api.deps" in result.stdout
    assert "service.prediction is not allowed to import fastapi" in result.stdout


def test_the_error_body_is_built_in_one_place() -> None:
    """service.errors.error_body builds {"error": {"code": ..., ...}}; every layer that
    answers an error (FastAPI handlers, body guard, OIP binary layer, HTTP protocol) calls
    it, and each status code has one exception class."""
    sources = {path.relative_to(ROOT).as_posix(): path.read_text()
               for path in (ROOT / "service").rglob("*.py")}
    builders = [path for path, text in sources.items()
                if re.search(r'"error":\s*\{\s*"code":', text)]
    assert builders == ["service/errors.py"]
    status_class = re.compile(r"^\s*status_code = (\d+)", re.MULTILINE)  # a class's status
    statuses = status_class.findall(sources["service/errors.py"])
    assert "415" in statuses and len(statuses) == len(set(statuses))
    elsewhere = [path for path, text in sources.items()
                 if path != "service/errors.py" and status_class.search(text)]
    assert not elsewhere
