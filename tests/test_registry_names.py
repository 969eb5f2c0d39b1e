"""One name rule on every way into the registry: the library (`writes`), `surrogate-train`
(`fit`, `register`) and the admin API refuse the same names, so no stored name can break
the export's Content-Disposition header, a URL or a log line."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.errors import InvalidInputError
from service.main import create_app
from service.registry.reads import list_models
from service.registry.writes import register, set_alias
from service.settings import Settings
from tests.cli_helpers import runner
from tests.registry_helpers import registry_dump
from tests.service_process import random_artifact
from training.cli import cli

BAD_NAMES = {
    "crlf": "steel\r\nx-injected: 1",
    "newline-at-end": "steel\n",
    "nul": "steel\x00",
    "quote": 'steel"; filename="evil.sh',
    "semicolon": "steel;x",
    "bidi-override": "steel\u202egpj.exe",
    "non-ascii": "stähl",
    "space": "steel bar",
    "dot-first": ".steel",
    "too-long": "s" * 129,
    "5000-chars": "s" * 5000,
    "empty": "",
}
BAD_ALIASES = {**BAD_NAMES, "digit-first": "1production", "too-long": "p" * 65}
TOKEN = "names-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_the_library_refuses_the_name_before_writing(session: Session, name: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        register(session, name, random_artifact().to_bytes(), actor="test")
    assert refused.value.details[0]["field"] == "name"
    assert list_models(session) == []


@pytest.mark.parametrize("alias", BAD_ALIASES.values(), ids=BAD_ALIASES.keys())
def test_the_library_refuses_the_alias(session: Session, alias: str) -> None:
    register(session, "steel", random_artifact().to_bytes(), actor="test")
    for write in (lambda: set_alias(session, "steel", alias, 1, actor="test"),
                  lambda: register(session, "steel", random_artifact().to_bytes(),
                                   actor="test", alias=alias)):
        with pytest.raises(InvalidInputError) as refused:
            write()
        assert refused.value.details[0]["field"] == "alias"


@pytest.mark.parametrize("actor", ["alice\r\nforged: entry", "alice\x00", "a" * 129, "",
                                   "al\u202eice"])
def test_the_library_refuses_an_actor_that_could_forge_a_log_line(session: Session,
                                                                  actor: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        register(session, "steel", random_artifact().to_bytes(), actor=actor)
    assert refused.value.details[0]["field"] == "actor"


def test_the_longest_allowed_names_are_stored(session: Session) -> None:
    name, alias = "s" * 128, "p" * 64
    register(session, name, random_artifact().to_bytes(), actor="alice (surrogate-train)",
             alias=alias)
    assert list_models(session)[0]["aliases"] == {alias: 1}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_surrogate_train_fit_refuses_the_name_before_fitting(tmp_path: Path, name: str,
                                                             database_url: str) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("strain,stress\n0,0\n")  # never read: the name is checked first
    result = runner.invoke(cli, ["fit", str(csv), "--name", name,
                                 "--database-url", database_url])
    assert result.exit_code == 2, result.output
    assert "name" in result.output and "is not allowed" in result.output
    assert "registered" not in result.output


def test_surrogate_train_refuses_a_bad_alias_and_register_a_bad_name(tmp_path: Path) -> None:
    artifact = tmp_path / "fit.npz"
    artifact.write_bytes(random_artifact().to_bytes())
    fit = runner.invoke(cli, ["fit", str(artifact), "--name", "steel", "--alias", 'x"y'])
    assert fit.exit_code == 2 and "alias" in fit.output
    for name in BAD_NAMES.values():
        result = runner.invoke(cli, ["register", str(artifact), "--name", name, "--url",
                                     "http://127.0.0.1:9", "--token", "t"])
        assert result.exit_code == 2, (name, result.output)  # refused before connecting
        assert "is not allowed" in result.output


def test_the_admin_api_refuses_every_bad_name_and_stores_nothing(database_url: str) -> None:
    settings = Settings(database_url=database_url, admin_token=TOKEN)
    data = random_artifact().to_bytes()
    before = registry_dump(database_url)
    with TestClient(create_app(settings)) as client:
        for label, name in BAD_NAMES.items():
            if not name:
                continue  # an empty path segment is another route, not a name
            response = client.post(f"/admin/models/{quote(name, safe='')}/versions",
                                   content=data, headers=AUTH)
            assert response.status_code == 422, (label, response.text)
        for label, alias in BAD_ALIASES.items():
            response = client.post("/admin/models/steel/versions", params={"alias": alias},
                                   content=data, headers=AUTH)
            assert response.status_code == 422, (label, response.text)
        assert registry_dump(database_url) == before
        ok = client.post("/admin/models/steel/versions", content=data,
                         headers={**AUTH, "X-Actor": "alice (ops)"})
        assert ok.status_code == 201 and ok.json()["registered_by"] == "alice (ops)"
