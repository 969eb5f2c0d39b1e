"""The training and registry contracts of pyproject.toml hold, and break when the import
cycles they replaced come back (a method importing the model it is handed, the report
importing the pipeline that calls it)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.test_architecture import ROOT, lint_imports

CONTRACTS = (
    "registry: routing over the cache and the writes, over reads and the tables",
    "training: the CLI over the pipeline over the report, scores, model and methods",
    "training.methods: each method over the MAP fits over what it needs of the model",
    "training: no import cycles between the modules of any package",
    "training: the service's domain and registry, never its entry points or adapters",
)


def test_the_training_and_registry_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in CONTRACTS:
        assert f"{contract} KEPT" in " ".join(result.stdout.split()), contract


def test_the_old_training_cycles_break_the_contracts(tmp_path: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "static", "templates")
    for package in ("service", "training"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for module, line in (("methods/map.py", "from training.model import HeteroskedasticBNN"),
                         ("report.py", "from training.pipeline import Split")):
        path = tmp_path / "training" / module
        # For annotations only, as they used to be: such imports count too.
        path.write_text(path.read_text() + f"\n\nimport typing\n\nif typing.TYPE_CHECKING:\n"
                        f"    {line}\n")

    result = lint_imports(tmp_path)

    output = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert f"{CONTRACTS[1]} BROKEN" in output
    assert f"{CONTRACTS[3]} BROKEN" in output
    assert "training.methods.map -> training.model" in output
    assert "training.report -> training.pipeline" in output
