"""Where a plan entry's training data comes from: a local CSV file or an http(s) URL.

A pod of the Indexed Job reads its group's data from a URL (object storage, an internal
file server); on one machine the plan names files next to it. Both are read the same way:
the header (to check the columns without reading the data), then the whole file (a URL
copied into a work folder, so the bytes hashed are the bytes fitted).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

# Enough for any header line; a "header" longer than this is not a CSV header.
_HEADER_LIMIT = 64 * 1024
_TIMEOUT_S = 60.0


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


class DataSourceError(OSError):
    """The data cannot be read; the message names the source and why."""


def read_header(source: str) -> list[str]:
    """The column names of a CSV file or URL (its first line)."""
    if is_url(source):
        first = _url_prefix(source)
    else:
        try:
            with open(source, "rb") as handle:
                first = handle.read(_HEADER_LIMIT)
        except OSError as exc:
            raise DataSourceError(f"cannot read {source}: {exc.strerror or exc}") from exc
    line = first.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    if not line.strip():
        raise DataSourceError(f"{source} has no header line")
    return [name.strip() for name in next(csv.reader(io.StringIO(line)))]


def _url_prefix(url: str) -> bytes:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=_TIMEOUT_S, follow_redirects=True) as response:
            if response.status_code != 200:
                raise DataSourceError(f"cannot read {url}: HTTP {response.status_code}")
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if b"\n" in data or len(data) >= _HEADER_LIMIT:
                    break
            return data
    except httpx.HTTPError as exc:
        raise DataSourceError(f"cannot read {url}: {exc}") from exc


def fetch(source: str, folder: Path) -> Path:
    """A local file holding the data: the file itself, or the URL downloaded into
    `folder` (a copy that cannot change between hashing and fitting)."""
    if not is_url(source):
        path = Path(source)
        if not path.is_file():
            raise DataSourceError(f"cannot read {source}: not a file")
        return path
    import httpx

    target = folder / "data.csv"
    try:
        with httpx.stream("GET", source, timeout=_TIMEOUT_S,
                          follow_redirects=True) as response:
            if response.status_code != 200:
                raise DataSourceError(f"cannot read {source}: HTTP {response.status_code}")
            with open(target, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise DataSourceError(f"cannot read {source}: {exc}") from exc
    return target

