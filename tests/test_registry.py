import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from service.artifact import sha256_hex
from service.errors import InvalidInputError, ModelLoadError, NotFoundError
from service.registry.cache import ModelCache
from service.registry.reads import list_models, load_blob, resolve_version
from service.registry.tables import ModelBlob, ModelVersion, VersionStatus
from service.registry.writes import register, set_alias
from tests.service_process import random_artifact

# Every test that uses the database runs on SQLite and on a real PostgreSQL server.
pytestmark = pytest.mark.backends("sqlite", "postgresql")


def test_registered_artifact_round_trips_with_its_checksum(session: Session) -> None:
    data = random_artifact(seed=1).to_bytes()
    version = register(session, "steel", data, actor="test")
    session.commit()
    ref = resolve_version(session, "steel", version=version)
    assert ref.sha256 == sha256_hex(data)
    assert load_blob(session, "steel", version) == data
    posterior = ModelCache().get(session, ref)
    assert posterior.draws == 50


def test_tampered_blob_in_the_database_is_refused(session: Session) -> None:
    data = random_artifact(seed=2).to_bytes()
    register(session, "steel", data, actor="test")
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    session.execute(update(ModelBlob).values(data=bytes(flipped)))
    session.commit()
    with pytest.raises(ModelLoadError, match="sha256"):
        ModelCache().get(session, resolve_version(session, "steel", version=1))


def test_versions_are_consecutive_per_model(session: Session) -> None:
    data = random_artifact().to_bytes()
    assert [register(session, "a", data, actor="test") for _ in range(3)] == [1, 2, 3]
    assert register(session, "b", data, actor="test") == 1


def test_invalid_artifact_writes_nothing(session: Session) -> None:
    with pytest.raises(InvalidInputError, match="artifact rejected"):
        register(session, "steel", b"junk", actor="test")
    assert list_models(session) == []


def test_resolution_prefers_version_then_alias_then_production_then_latest(
    session: Session,
) -> None:
    data = random_artifact().to_bytes()
    for _ in range(3):
        register(session, "m", data, actor="test")
    assert resolve_version(session, "m").version == 3  # no production alias: latest
    set_alias(session, "m", "production", 1, actor="test")
    set_alias(session, "m", "candidate", 2, actor="test")
    assert resolve_version(session, "m").version == 1
    assert resolve_version(session, "m", alias="candidate").version == 2
    assert resolve_version(session, "m", version=3).version == 3
    set_alias(session, "m", "production", 2, actor="test")  # moving an alias
    assert resolve_version(session, "m").version == 2
    assert list_models(session)[0]["aliases"] == {"candidate": 2, "production": 2}


def test_unknown_model_version_or_alias_is_not_found(session: Session) -> None:
    register(session, "m", random_artifact().to_bytes(), actor="test")
    with pytest.raises(NotFoundError, match="not registered"):
        resolve_version(session, "nope")
    with pytest.raises(NotFoundError, match="no version 9"):
        resolve_version(session, "m", version=9)
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        resolve_version(session, "m", alias="staging")


def test_archived_version_cannot_hold_an_alias(session: Session) -> None:
    register(session, "m", random_artifact().to_bytes(), actor="test")
    session.execute(update(ModelVersion).values(status=VersionStatus.ARCHIVED))
    with pytest.raises(InvalidInputError, match="archived"):
        set_alias(session, "m", "production", 1, actor="test")
