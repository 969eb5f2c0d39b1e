"""What `surrogate-train` registers with a fit, and the database way of registering it.

A fit is registered either straight into the registry database (`register_in_database`,
one unit of work) or through a running service's admin API (`training.registry_client`).
Both take one `FitRegistration`, so both store the same things: the artifact, the fit's
ArviZ InferenceData, its report figures, the alias, the command line as the version's
source, and the same actor, `<user> (surrogate-train)`. Names follow the registry's one
rule (`service.registry.names`), checked before a fit starts so a bad name costs nothing.
"""

from __future__ import annotations

import getpass
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.artifact import sha256_hex
from service.registry import writes
from service.registry.db import check_schema_at_head, make_engine, make_session_factory
from service.registry.names import check_alias, check_model_name
from service.registry.unit_of_work import unit_of_work

# The admin API takes a version's source (the command line) up to this length.
SOURCE_MAX_CHARS = 1_000


def training_actor() -> str:
    """Who registers, for the audit log: the local user, in the actor rule's characters."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry (some containers)
        user = "unknown"
    return f"{re.sub(r'[^A-Za-z0-9_.@-]', '_', user)[:100]} (surrogate-train)"


def command_source() -> str:
    """The command line that made the fit, as the version records it."""
    return shlex.join(sys.argv)[:SOURCE_MAX_CHARS]


def check_names(name: str, alias: str | None) -> None:
    """InvalidInputError stating the rule for a name the registry would refuse: checked
    before anything is fitted."""
    check_model_name(name)
    if alias is not None:
        check_alias(alias)


@dataclass(frozen=True)
class FitRegistration:
    """Everything registered with one version."""

    name: str
    artifact: bytes
    alias: str | None = None
    inference_data: bytes | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)  # {"report/fit.png": bytes}
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)  # the version's tags
    source: str = field(default_factory=command_source)
    actor: str = field(default_factory=training_actor)


def register_in_database(database_url: str, registration: FitRegistration) -> int:
    """Store the registration as the next version of its model, in one unit of work (a
    failure leaves the registry as it was); returns the version."""
    engine = make_engine(database_url)
    try:
        check_schema_at_head(engine)
        with unit_of_work(make_session_factory(engine)) as session:
            return writes.register(
                session, registration.name, registration.artifact, actor=registration.actor,
                alias=registration.alias, description=registration.description,
                source=registration.source, inference_data=registration.inference_data,
                files=dict(registration.files), tags=dict(registration.tags))
    finally:
        engine.dispose()


def report_files(manifest: Mapping[str, Any]) -> dict[str, bytes]:
    """The report figures the manifest records, read back from its folder and keyed by
    their path in the registry ("report/fit.png"); a figure changed since the fit (its
    sha256 no longer matches) is refused rather than stored under the fit's name."""
    report = manifest.get("report")
    if not report:
        return {}
    folder = Path(report["dir"])
    files = {}
    for entry in report["files"]:
        data = (folder / entry["file"]).read_bytes()
        if sha256_hex(data) != entry["sha256"]:
            raise ValueError(f"report figure {folder / entry['file']} changed since the fit "
                             "(its sha256 differs from the manifest's)")
        files[f"report/{entry['file']}"] = data
    return files
