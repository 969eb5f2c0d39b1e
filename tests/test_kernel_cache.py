"""The compiled kernel's cache: `surrogate-serve warmup` fills NUMBA_CACHE_DIR, and a fresh
replica started with that directory read-only loads every variant from it (compiles
nothing) and serves. The service reports where its kernel came from in its log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.service_process import (
    ServerProcess,
    free_port,
    random_artifact,
    read_only_directory,
    seed_registry,
    service_command,
)

BIN = Path(sys.executable).parent


def warmup(cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "surrogate-serve"), "warmup"], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})


def kernel_line(log: Path) -> str:
    return next(line for line in log.read_text().splitlines() if "kernel:" in line)


@pytest.mark.slow  # compiles the kernel once into a fresh directory (15-30 s)
def test_warmup_fills_the_cache_and_a_read_only_replica_loads_it_without_compiling(
        tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    filled = warmup(cache)
    assert filled.returncode == 0, filled.stderr
    assert "0 variants loaded from the cache" in filled.stdout  # a fresh directory
    assert "(writable)" in filled.stdout and list(cache.rglob("*.nbc"))

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed_registry(url, "steel", [random_artifact(draws=20)])
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    port = free_port()
    env = {"SURROGATE_DATABASE_URL": url, "NUMBA_CACHE_DIR": str(cache),
           "SURROGATE_LOG_FORMAT": "text"}
    with read_only_directory(cache) as prefix:
        server = ServerProcess.launch([*prefix, *service_command(port)], port, env,
                                      tmp_path / "replica.log")
        try:
            server.wait_until_ok("/readyz")
            predicted = httpx.post(f"{server.url}/v1/models/steel/predict", timeout=10,
                                   json={"strain": [0.0] * 300})  # the parallel variant too
            assert predicted.status_code == 200, predicted.text
        finally:
            server.stop()
    line = kernel_line(server.log)
    assert ", 0 compiled" in line and "(read-only)" in line, line
    assert int(line.split("kernel: ")[1].split()[0]) > 0  # variants loaded from the cache
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == before

    # A warmup cut short by a full disk: the serial summary kernel's code half written.
    # One entry point's file is enough, and its repair recompiles it alone (the
    # functions it calls load from their own files) instead of every kernel.
    damaged = damage(cache, ".nbc", None, pattern="kernel._serial-*")
    repaired = warmup(cache)
    assert repaired.returncode == 0, repaired.stderr
    assert "unreadable cache entries skipped" in repaired.stdout, repaired.stdout
    # those variants alone (one per type signature of the serial kernel)
    assert f", {damaged} compiled" in repaired.stdout, repaired.stdout
    assert "cannot be read" in repaired.stderr
    assert "entries skipped" not in warmup(cache).stdout


TINY = """
import logging
import numba
from service.inference import kernel_cache
logging.basicConfig()

@kernel_cache.enable
@numba.njit
def add_one(x):
    return x + 1

assert add_one(1) == 2
print(kernel_cache.report().describe())
"""


def run_tiny(module: Path, cache: Path, prefix: list[str] = ()) -> subprocess.CompletedProcess:
    """A one-function module through the same cache (compiles in a fraction of a second)."""
    done = subprocess.run([*prefix, sys.executable, str(module)], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(cache),
                               "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    module = tmp_path / "tiny.py"
    module.write_text(TINY)
    return module


def test_a_cached_function_is_loaded_from_a_read_only_directory(
        tiny: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert "0 variants loaded from the cache, 1 compiled" in run_tiny(tiny, cache).stdout
    assert "1 variants loaded from the cache, 0 compiled" in run_tiny(tiny, cache).stdout
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    with read_only_directory(cache) as prefix:
        done = run_tiny(tiny, cache, prefix)
    assert "1 variants loaded from the cache, 0 compiled" in done.stdout
    assert "(read-only)" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == before


def test_a_read_only_directory_without_the_function_compiles_it_in_memory(
        tiny: Path, tmp_path: Path) -> None:
    """What happens on another CPU model than the image was built on: the cache has no
    entry that fits, the directory cannot take one; the function compiles and runs."""
    cache = tmp_path / "cache"
    run_tiny(tiny, cache)
    for entry in cache.rglob("*.nb?"):
        entry.unlink()  # the function's folder stays, empty
    with read_only_directory(cache) as prefix:
        done = run_tiny(tiny, cache, prefix)
    assert "0 variants loaded from the cache, 1 compiled" in done.stdout
    assert "is not writable" in done.stderr and "compiled in memory only" in done.stderr
    assert not list(cache.rglob("*.nb?"))


def test_an_unusable_cache_directory_means_no_cache_not_a_failure(
        tiny: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    done = run_tiny(tiny, blocked / "cache")
    assert "1 compiled; no cache directory" in done.stdout


def damage(cache: Path, suffix: str, content: bytes | None, pattern: str = "*") -> int:
    """Truncate (content None) or overwrite every cache file with this suffix (whose name
    matches `pattern`); how many."""
    files = list(cache.rglob(f"{pattern}{suffix}"))
    assert files
    for path in files:
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]
                         if content is None else content)
    return len(files)


@pytest.mark.parametrize(("suffix", "content"), [(".nbc", None), (".nbi", b"garbage\x00"),
                                                 (".nbi", None)])
def test_an_unreadable_cache_file_is_skipped_compiled_in_memory_and_rewritten(
        tiny: Path, tmp_path: Path, suffix: str, content: bytes | None) -> None:
    cache = tmp_path / "cache"
    run_tiny(tiny, cache)
    damage(cache, suffix, content)
    done = run_tiny(tiny, cache)  # would raise at import without the guard
    assert "0 variants loaded from the cache, 1 compiled" in done.stdout
    assert "unreadable cache entries skipped" in done.stdout and ".nbi" in done.stdout
    assert "cannot be read" in done.stderr and "compiles in memory" in done.stderr
    again = run_tiny(tiny, cache)  # the writable directory was repaired
    assert "1 variants loaded from the cache, 0 compiled" in again.stdout
    assert "entries skipped" not in again.stdout


def test_an_unreadable_cache_file_in_a_read_only_directory_is_skipped(
        tiny: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run_tiny(tiny, cache)
    damage(cache, ".nbi", b"\x80\x05garbage")
    with read_only_directory(cache) as prefix:
        done = run_tiny(tiny, cache, prefix)
    assert "0 variants loaded from the cache, 1 compiled" in done.stdout
    assert "unreadable cache entries skipped" in done.stdout
    assert "cannot be read" in done.stderr
