"""Files stored with a version (report figures, the ArviZ InferenceData): checked on the
way in and attached once, immutably. Functions take a Session; callers own the
transaction."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.artifact import sha256_hex
from service.errors import ConflictError, InvalidInputError
from service.png import check_png
from service.registry.reads import get_version
from service.registry.tables import (
    ModelVersionFile,
)

# netCDF-4 files are HDF5 files; classic netCDF starts with "CDF" and a format byte.
_NETCDF_MAGICS = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")


# Files a version may carry: relative paths of at most three segments, each starting with
# a letter or digit (so no "..", no hidden or absolute paths), and only PNG images so far
# (the fit report figures). The extension decides the media type; the bytes must be one
# whole file of that type (they are served back as they are).
_FILE_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


_FILE_PATH = re.compile(rf"(?:{_FILE_SEGMENT}/){{0,2}}{_FILE_SEGMENT}")


_FILE_TYPES = {".png": ("image/png", check_png)}


def insert_if_absent(session: Session, entity: type[Any], values: dict[str, Any],
                      key: list[str]) -> bool:
    """INSERT ... ON CONFLICT (key) DO NOTHING; whether the row was inserted. One statement,
    so a concurrent insert of the same key makes it a no-op, never a duplicate-key error
    (PostgreSQL waits for the other transaction; SQLite serialises writers)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = entity.__table__
    statement = (insert(table).values(**values).on_conflict_do_nothing(index_elements=key)
                 # RETURNING says whether a row went in (rowcount came back -1 on PostgreSQL).
                 .returning(*(table.c[column] for column in key)))
    return session.execute(statement).first() is not None


def check_inference_data(data: bytes) -> None:
    """Refuse anything that is not a netCDF file (it is served back as is, never parsed)."""
    if not data.startswith(_NETCDF_MAGICS):
        problem = ("not a netCDF file (expected the netCDF-4/HDF5 or classic netCDF "
                   "signature)")
        raise InvalidInputError(f"inference data rejected: {problem}",
                                [{"field": "inference_data", "message": problem}])


def check_version_file(path: str, data: bytes) -> str:
    """The media type of a file to attach to a version; refuses unsafe paths, types other
    than PNG, and bytes that do not match the type (the file is served back as is)."""
    if not _FILE_PATH.fullmatch(path):
        raise InvalidInputError(
            f"file path {path!r} is not a safe relative name like 'report/fit.png'",
            [{"field": "path", "message": "up to 3 segments of letters, digits, '.', '_', "
              "'-', each starting with a letter or digit"}])
    suffix = path[path.rfind("."):] if "." in path else ""
    if suffix not in _FILE_TYPES:
        raise InvalidInputError(f"file path {path!r}: only {sorted(_FILE_TYPES)} files can "
                                "be attached", [{"field": "path", "message": "must end in .png"}])
    media_type, check = _FILE_TYPES[suffix]
    try:
        check(data)
    except ValueError as exc:
        raise InvalidInputError(f"file {path!r} is not a valid PNG image: {exc}",
                                [{"field": "body", "message": f"not {media_type}: {exc}"}]
                                ) from None
    return media_type


def file_values(name: str, version: int, path: str, media_type: str,
                 data: bytes) -> dict[str, Any]:
    return {"name": name, "version": version, "path": path, "media_type": media_type,
            "size": len(data), "sha256": sha256_hex(data), "content": data}


def attach_file(session: Session, name: str, version: int, path: str,
                data: bytes) -> tuple[ModelVersionFile, bool]:
    """Attach a file to an existing version; returns (row, created).

    Files are immutable: sending the same bytes again is a no-op (created is False), so an
    interrupted upload can simply be retried; different bytes for the same path conflict.
    """
    media_type = check_version_file(path, data)
    get_version(session, name, version)
    key = (name, version, path)
    # Insert-if-absent rather than look-then-insert: an upload racing this one for the same
    # new path (a retry, a second operator) must end as a 200 or a 409, not a 500.
    created = insert_if_absent(session, ModelVersionFile,
                                file_values(name, version, path, media_type, data),
                                ["name", "version", "path"])
    stored = session.get(ModelVersionFile, key, populate_existing=True)
    if stored.sha256 != sha256_hex(data):
        raise ConflictError(f"version {version} of {name!r} already has a different file "
                            f"{path!r} (versions are immutable)",
                            [{"path": path, "sha256": stored.sha256}])
    return stored, created
