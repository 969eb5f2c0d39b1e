"""Alias writes racing each other through the real HTTP server, on SQLite and PostgreSQL:
every call is a 200 or a 404 (a delete that found nothing), never a 500, and the audit log
replays to the alias's final state. Archiving racing an alias move never leaves an alias
on an archived version."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.service_process import ServerProcess, free_port, random_artifact, service_command

pytestmark = pytest.mark.backends("sqlite", "postgresql")

TOKEN = "tok-alias-race"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RACERS = 60
VERSIONS = 3


def replay(audit: list[dict]) -> int | None:
    """Where the audit log says alias `production` points, checking that every entry's
    previous version is the state the entries before it left (the log is in the order the
    writes were serialised, so a lost update or a stale read shows up here)."""
    state: int | None = None
    for entry in audit:
        if entry["alias"] != "production":
            continue
        if entry["action"] in ("set_alias", "register_version"):
            if entry["action"] == "set_alias":
                assert entry["details"]["previous_version"] == state, entry
            state = entry["version"]
        elif entry["action"] == "delete_alias":
            assert state is not None and entry["version"] == state, entry
            state = None
    return state


def test_racing_alias_puts_and_deletes_are_200_or_404_and_replay_from_the_audit_log(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    server = ServerProcess.launch(service_command(port), port, {
        "SURROGATE_DATABASE_URL": database_url, "SURROGATE_ADMIN_TOKEN": TOKEN,
        "SURROGATE_ACCESS_LOG": "false"}, tmp_path / "server.log")
    rng = random.Random(0)
    # Two deletes for every put: deletes that lose a race to another delete are the case
    # that used to end in a 500.
    calls = [("PUT", rng.randint(1, VERSIONS)) if i % 3 == 0 else ("DELETE", None)
             for i in range(RACERS)]
    start = threading.Barrier(RACERS)
    try:
        server.wait_until_ok()
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as client:
            for seed in range(VERSIONS):
                params = {"alias": "production"} if seed == 0 else {}
                assert client.post("/admin/models/steel/versions", params=params,
                                   content=random_artifact(draws=10, seed=seed).to_bytes(),
                                   headers={"content-type": "application/octet-stream"}
                                   ).status_code == 201

            def call(job: tuple[str, int | None]) -> httpx.Response:
                method, version = job
                start.wait(timeout=60)  # every write reaches the server at the same moment
                return client.request(method, "/admin/models/steel/aliases/production",
                                      json=None if version is None else {"version": version})

            with ThreadPoolExecutor(RACERS) as pool:
                responses = list(pool.map(call, calls, timeout=300))
            audit = client.get("/admin/audit", params={"model": "steel", "limit": 1000}).json()
            final = client.get("/v1/models/steel").json()["aliases"].get("production")
            archive_race = race_archive_against_alias_moves(client)
    finally:
        server.stop()
    outcomes = [(method, response.status_code) for (method, _), response
                in zip(calls, responses, strict=True)]
    assert all(status == 200 or (method, status) == ("DELETE", 404)
               for method, status in outcomes), (outcomes, server.log.read_text()[-3000:])
    for response in responses:
        if response.status_code == 404:
            assert response.json()["error"]["message"] == \
                "model 'steel' has no alias 'production'"
    audit.reverse()  # oldest first
    changes = [e for e in audit if e["action"] in ("set_alias", "delete_alias")]
    assert len(changes) == sum(status == 200 for _, status in outcomes)
    # What each caller was told it replaced is what the log recorded it replaced.
    told = sorted((r.json()["version"] or 0, r.json()["previous_version"] or 0)
                  for r in responses if r.status_code == 200)
    logged = sorted((e["version"] if e["action"] == "set_alias" else 0,
                     (e["details"]["previous_version"] if e["action"] == "set_alias"
                      else e["version"]) or 0) for e in changes)
    assert told == logged
    assert replay(audit) == final
    assert set(archive_race) <= {("PATCH", 200), ("PATCH", 409), ("PUT", 200), ("PUT", 422)}, \
        archive_race
    print(f"\n{RACERS} racing alias writes: "
          f"{sum(s == 200 for _, s in outcomes)} x 200, "
          f"{sum(s == 404 for _, s in outcomes)} x 404 (deletes that found nothing), "
          f"{sum(s >= 500 for _, s in outcomes)} x 5xx; archive race: "
          f"{sorted(Counter(archive_race).items())}")


def race_archive_against_alias_moves(client: httpx.Client) -> list[tuple[str, int]]:
    """Archive and restore version 3 while `candidate` is moved to it, all at once: an
    archive that loses is a 409 (an alias holds the version), a move that loses a 422
    (the version is archived). Afterwards no alias points at an archived version."""
    client.delete("/admin/models/steel/aliases/production")  # only `candidate` holds v3
    jobs = [("PATCH", {"status": "archived" if i % 4 == 0 else "ready"}) if i % 2 == 0
            else ("PUT", {"version": VERSIONS}) for i in range(RACERS // 2)]
    start = threading.Barrier(len(jobs))

    def call(job: tuple[str, dict]) -> tuple[str, int]:
        method, body = job
        start.wait(timeout=60)
        if method == "PATCH":
            response = client.patch(f"/admin/models/steel/versions/{VERSIONS}", json=body)
            return method, response.status_code
        response = client.put("/admin/models/steel/aliases/candidate", json=body)
        # Deleted again at once (200, or 404 when another call did), so archives can win.
        client.delete("/admin/models/steel/aliases/candidate")
        return method, response.status_code

    with ThreadPoolExecutor(len(jobs)) as pool:
        outcomes = list(pool.map(call, jobs, timeout=300))
    model = client.get("/v1/models/steel").json()
    archived = {v["version"] for v in model["versions"] if v["status"] == "archived"}
    assert not archived & set(model["aliases"].values()), model
    return outcomes
