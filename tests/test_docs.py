"""The docs name what exists: the README's layout table lists every package of the
service, and every repo path, module file name and dotted module name (`service.x.y`,
`training.x`) that README.md or docs/*.md cite is in the tree, so the map a reader
follows matches it."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP_FOLDERS = ("service", "training", "tests", "docs", "benchmarks", "deploy", "scripts",
               "clients", "migrations", ".ci")
# Paths the docs name that a command creates (none is committed).
GENERATED = {
    "clients/c/predict": "built by `make -C clients/c`",
    "tests/output/ui/": "screenshots written by tests/test_ui_browser.py",
}
_FOLDERS = "|".join(map(re.escape, TOP_FOLDERS))
# A path ends before a closing full stop: "see service/x.py." cites service/x.py.
_PATH = re.compile(rf"(?<![\w./-])((?:{_FOLDERS})/(?:[\w./*{{}}-]*[\w/*}}-])?)")
_MODULE_FILE = re.compile(r"`(\w+\.py)`")
_DOTTED = re.compile(r"(?<![\w./-])((?:service|training)(?:\.\w+)+)")
_FILE_SUFFIXES = {"md", "py", "yml", "yaml", "json", "toml", "txt", "proto", "cfg", "sh"}


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


def cited(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(document, citation) for every match of `pattern` in README.md and docs/*.md."""
    return [(doc.relative_to(ROOT).as_posix(), match)
            for doc in DOCS for match in pattern.findall(doc.read_text())]


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return out.stdout.split()


def exists(path: str) -> bool:
    if path in GENERATED:
        return True
    if any(ch in path for ch in "*{"):  # a pattern: `service/oip/*_pb2*.py`
        return any(ROOT.glob(re.sub(r"\{[^}]*\}", "*", path)))
    return (ROOT / path).exists()


def _defined_names(body: list[ast.stmt]) -> dict[str, list[ast.stmt] | None]:
    """Names a module or class body defines, with the body of each class (None otherwise)."""
    names: dict[str, list[ast.stmt] | None] = {}
    for node in body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = node.body
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = None
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update({n.id: None for n in ast.walk(target) if isinstance(n, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = None
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update({(a.asname or a.name).split(".")[0]: None for a in node.names})
    return names


def module_exists(dotted: str) -> bool:
    """`service.a.b` names a module, or a module followed by names defined in it
    (`service.inference.predictive.samples`). Read from the source, not imported: the
    generated gRPC modules and tritonclient's register the same protobuf names, so
    importing both in one test process fails."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ROOT / Path(*parts[:cut])
        source = module.with_suffix(".py")
        if not source.exists():
            source = module / "__init__.py"
            if not source.exists():
                continue
        body: list[ast.stmt] | None = ast.parse(source.read_text()).body
        for attribute in parts[cut:]:
            names = _defined_names(body or [])
            if attribute not in names:
                return False
            body = names[attribute]
        return True
    return False


def test_every_repo_path_the_docs_cite_exists() -> None:
    paths = cited(_PATH)
    assert len(paths) > 50
    missing = [(doc, path) for doc, path in paths if not exists(path)]
    assert not missing, missing


def test_every_module_file_the_docs_name_exists() -> None:
    """A bare `name.py` (as in a table of a package's files) is some file of the repo."""
    names = {path.rsplit("/", 1)[-1] for path in tracked_files()}
    cited_names = cited(_MODULE_FILE)
    assert len(cited_names) > 20
    missing = [(doc, name) for doc, name in cited_names
               if not any(file.endswith(name) for file in names)]
    assert not missing, missing


def test_every_dotted_module_the_docs_name_exists() -> None:
    modules = [(doc, name) for doc, name in cited(_DOTTED)
               if name.rsplit(".", 1)[-1] not in _FILE_SUFFIXES]  # docs/training.md
    assert len(modules) > 5
    missing = [(doc, name) for doc, name in modules if not module_exists(name)]
    assert not missing, missing


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    (_PATH, "see service/prediction/pipeline.py.", ["service/prediction/pipeline.py"]),
    (_PATH, "`docs/api.md` and (tests/) but not x/service/a", ["docs/api.md", "tests/"]),
    (_DOTTED, "service.inference.curves and training.cli, not docs.service.x",
     ["service.inference.curves", "training.cli"]),
    (_MODULE_FILE, "`repository.py` holds it", ["repository.py"]),
])
def test_the_citation_patterns_find_what_they_should(pattern: re.Pattern[str], text: str,
                                                     expected: list[str]) -> None:
    assert pattern.findall(text) == expected


def test_a_stale_citation_is_caught() -> None:
    assert not exists("service/registry/repository.py")
    assert not module_exists("service.curves")
    assert not module_exists("service.inference.predictive.no_such_function")
    assert exists("service/oip/*_pb2*.py") and module_exists("service.inference.curves")
