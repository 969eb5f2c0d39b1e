"""wrk, the C load generator, as the benchmarks' HTTP client: its latencies carry no
Python client overhead (a simulation code's libcurl handle kept open sees about the same).
Debian package `wrk`; scripts/system-deps.sh installs it."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

_LUA_POST = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""


def post_script(body: bytes) -> str:
    """A wrk Lua script that POSTs `body` (JSON, so no quote needs escaping) every time."""
    return _LUA_POST.format(body=body.decode())


def wrk(url: str, connections: int, seconds: float, script: str | None = None,
        threads: int = 1) -> dict[str, float]:
    """Run wrk; return requests/s, p50/p99 latency (ms), request count and error count."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--latency", "-s", lua.name, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)

    def latency_ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency_ms("50%"),
        "p99": latency_ms("99%"),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
    }
