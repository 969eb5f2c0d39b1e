"""Latency floors: servers that do no work, measured with the same client as ours.

A one-strain predict cannot answer faster than the server stack it runs on. These two
servers answer every request with the same fixed 256-byte JSON body:
- `app`, a do-nothing ASGI app, served by uvicorn exactly as `surrogate-serve` serves the
  service (`uvicorn.run` defaults: uvloop, httptools) with its access log off: the floor of
  any app on our server stack;
- `python -m benchmarks._floor PORT`: a bare uvloop socket server with no HTTP framework
  (it answers each request head it sees and parses nothing): the floor of a Python
  asyncio server on this machine's loopback.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from starlette.types import Receive, Scope, Send

BODY = b'{"floor":"' + b"x" * 244 + b'"}'
_HEADERS = [(b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode())]
_RAW_RESPONSE = (b"HTTP/1.1 200 OK\r\n"
                 + b"".join(name + b": " + value + b"\r\n" for name, value in _HEADERS)
                 + b"\r\n" + BODY)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body, answers BODY."""
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


class _BareProtocol(asyncio.Protocol):
    """One fixed response per request head received (keep-alive; no parsing)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for _ in range(data.count(b"\r\n\r\n")):
            self.transport.write(_RAW_RESPONSE)


async def _serve_bare(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_BareProtocol, "127.0.0.1", port)
    await server.serve_forever()


@contextmanager
def floors() -> Iterator[dict[str, str]]:
    """Both floor servers on free loopback ports: {label: url}."""
    from tests.service_process import ServerProcess, free_port

    commands = {
        "uvicorn, do-nothing app": lambda port: [
            sys.executable, "-m", "uvicorn", "benchmarks._floor:app", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--lifespan", "off"],
        "bare uvloop socket": lambda port: [sys.executable, "-m", "benchmarks._floor",
                                            str(port)],
    }
    with tempfile.TemporaryDirectory(prefix="surrogate-floor-") as tmp, ExitStack() as stack:
        urls = {}
        for label, command in commands.items():
            port = free_port()
            running = ServerProcess.launch(command(port), port, {},
                                           Path(tmp) / f"{port}.log")
            stack.callback(running.stop)
            running.wait_until_ok("/", timeout_s=60)
            urls[label] = f"{running.url}/"
        yield urls


if __name__ == "__main__":
    import uvloop

    uvloop.run(_serve_bare(int(sys.argv[1])))
