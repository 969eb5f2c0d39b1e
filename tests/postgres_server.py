"""A throwaway PostgreSQL server for the test session (real server, never a mock).

Uses the Debian packages' `initdb`/`pg_ctl` (scripts/system-deps.sh --ci installs them).
As root the server runs as the `postgres` user (PostgreSQL refuses to run as root). It
listens on 127.0.0.1 on a free port, with its socket in its own temporary directory, so
it never touches a system cluster.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.service_process import free_port


def find_pg_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries, or None."""
    if env := os.environ.get("SURROGATE_TEST_PG_BIN"):
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name)
                        if Path(p).parent.parent.name.isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None



@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True,
                              timeout=timeout, cwd=self.root)

    @classmethod
    def create(cls, bin_dir: Path) -> PostgresServer:
        # Under /tmp, not $TMPDIR: the `postgres` user must be able to reach it, and the
        # socket path must stay short (Unix sockets allow about 100 characters).
        base = "/tmp" if os.path.isdir("/tmp") else None
        root = Path(tempfile.mkdtemp(prefix="surrogate-pg-", dir=base))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        server = cls(bin_dir=bin_dir, root=root, port=free_port())
        server._run("initdb", "-D", str(server.data_dir), "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--no-sync")
        return server

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        for attempt in range(3):
            try:
                self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "log"),
                          "-o", options, "-w", "-t", "30", "start")
                return
            except subprocess.CalledProcessError as exc:
                if attempt == 2:
                    raise RuntimeError("PostgreSQL did not start:\n" + self.log_tail()) from exc
                time.sleep(0.5)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop")

    def log_tail(self) -> str:
        try:
            return (self.root / "log").read_text()[-2000:]
        except OSError:
            return ""

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
