"""The lean predict path (service/api/fast_predict.py) answers the same bytes as the
FastAPI route, and leaves every other request, valid or not, to the route."""

import http.client
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from service.api.deps import get_live_registry
from service.api.fast_predict import INLINE_MAX_POINTS
from service.main import create_app
from service.observability import JsonFormatter
from service.registry.writes import register, set_alias
from service.settings import Settings
from tests.live_server import live_server
from tests.service_process import random_artifact

MANY = np.random.default_rng(7).uniform(-0.7, 0.7, 3 * INLINE_MAX_POINTS).tolist()


@pytest.fixture
def registered(session: Session) -> None:
    for seed in (41, 42):
        register(session, "demo", random_artifact(seed=seed).to_bytes(), actor="test")
    set_alias(session, "demo", "production", 1, actor="test")
    set_alias(session, "demo", "candidate", 2, actor="test")
    session.commit()


def serve(database_url: str, fast_predict: bool) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url,
                                        fast_predict=fast_predict))) as client:
        yield client


@pytest.fixture
def lean(database_url: str, registered) -> Iterator[TestClient]:
    """The service as deployed, started after the models were registered (so they are in
    its routing table, as in production, and the lean path can answer)."""
    yield from serve(database_url, fast_predict=True)


@pytest.fixture
def route_only(database_url: str, registered) -> Iterator[TestClient]:
    """The same service with the lean path switched off: every request takes the route."""
    yield from serve(database_url, fast_predict=False)


def post(client: TestClient, content: bytes | str, name: str = "demo",
         content_type: str | None = "application/json"):
    headers = {"content-type": content_type} if content_type else {}
    return client.post(f"/v1/models/{name}/predict", content=content, headers=headers)


def assert_same_answer(lean: TestClient, route_only: TestClient, content: bytes | str,
                       **options) -> int:
    fast, slow = post(lean, content, **options), post(route_only, content, **options)
    assert (fast.status_code, fast.content) == (slow.status_code, slow.content), content
    drop = {"x-request-id"}
    assert {k: v for k, v in fast.headers.items() if k not in drop} == {
        k: v for k, v in slow.headers.items() if k not in drop}
    return fast.status_code


@pytest.mark.parametrize("content", [
    '{"strain": [0.1]}',
    '{"strain": [-0.4, 0, 0.4, 1, -0.0, 5e-324, 0.30000000000000004]}',
    '{"strain": [0.9, -0.9]}',  # outside the training domain: flagged
    '{"strain": [0.1], "version": 2}',
    '{"strain": [0.1], "alias": "candidate"}',
    '{"strain": [0.1], "alias": "production"}',
    '{"strain": [0.1], "version": null, "alias": null}',
    '{"alias": "candidate", "strain": [0.25, 0.125]}',
    '{"strain": [0.1], "strain": [0.2]}',  # duplicate keys: the last wins, as in json
    '{"strain": [123456789012345678901234567890, 9007199254740993]}',
    f'{{"strain": {MANY}}}',  # more than INLINE_MAX_POINTS: computed in the thread pool
    f'{{"strain": {MANY * 200}, "version": 1}}',
])
def test_plain_requests_get_the_routes_bytes(lean: TestClient, route_only: TestClient,
                                             content: str) -> None:
    assert assert_same_answer(lean, route_only, content) == 200


@pytest.mark.parametrize("content,name,content_type", [
    ('{"strain": []}', "demo", "application/json"),
    ('{"strain": [true]}', "demo", "application/json"),
    ('{"strain": [0.1, null, "x"]}', "demo", "application/json"),
    ('{"strain": [0.1, [0.2]]}', "demo", "application/json"),
    ('{"strain": [{"a": 1}], "alias": "candidate"}', "demo", "application/json"),
    ('{"strain": [0.1, "x"], "version": "y"}', "demo", "application/json"),
    ('{"strain": ["x"], "tangent": true}', "nope", "application/json"),
    ('{"strain": ["0.1"]}', "demo", "application/json"),
    ('{"strain": [NaN]}', "demo", "application/json"),
    ('{"strain": [1e999]}', "demo", "application/json"),
    ('{"strain": [0.1], "version": 0}', "demo", "application/json"),
    ('{"strain": [0.1], "version": true}', "demo", "application/json"),
    ('{"strain": [0.1], "version": 1.0}', "demo", "application/json"),
    ('{"strain": [0.1], "version": 1, "alias": "production"}', "demo", "application/json"),
    ('{"strain": [0.1], "alias": ""}', "demo", "application/json"),
    ('{"strain": [0.1], "alias": "' + "a" * 65 + '"}', "demo", "application/json"),
    ('{"strain": [0.1], "unknown": 1}', "demo", "application/json"),
    ('{"strain": [0.1]', "demo", "application/json"),
    ('{"strain": [0.1]} x', "demo", "application/json"),
    ("", "demo", "application/json"),
    ("[0.1]", "demo", "application/json"),
    ("\ufeff" + '{"strain": [0.1]}', "demo", "application/json"),  # FastAPI accepts a BOM
    ('{"strain": [0.1]}', "demo", "text/plain"),
    ('{"strain": [0.1]}', "demo", None),
    ('{"strain": [0.1]}', "demo", "application/merge-patch+json"),
    ('{"strain": [0.1]}', "nope", "application/json"),
    ('{"strain": [0.1]}', "x" * 129, "application/json"),
    ('{"strain": [0.1], "version": 7}', "demo", "application/json"),
    ('{"strain": [0.1], "alias": "staging"}', "demo", "application/json"),
    # Valid, but with options the lean path leaves to the route.
    ('{"strain": [0.1], "tangent": true}', "demo", "application/json"),
    ('{"strain": [0.1], "tangent": false}', "demo", "application/json"),
    ('{"strain": [0.9], "extrapolation": "reject"}', "demo", "application/json"),
    ('{"strain": [0.1], "quantiles": [0.5]}', "demo", "application/json"),
])
def test_everything_else_gets_the_routes_answer(
    lean: TestClient, route_only: TestClient, content: str, name: str,
    content_type: str | None
) -> None:
    assert_same_answer(lean, route_only, content, name=name, content_type=content_type)


def test_point_limit_is_the_routes_413(database_url: str, registered) -> None:
    answers = []
    for fast in (True, False):
        settings = Settings(database_url=database_url, max_points_per_request=3,
                            fast_predict=fast)
        with TestClient(create_app(settings)) as client:
            answers.append([(r.status_code, r.content) for r in (
                post(client, '{"strain": [0, 0.1, 0.2]}'),
                post(client, '{"strain": [0, 0.1, 0.2, 0.3]}'))])
    assert answers[0] == answers[1]
    assert [status for status, _ in answers[0]] == [200, 413]


def test_plain_requests_never_reach_the_route(database_url: str, registered) -> None:
    """With the route's registry dependency broken, plain requests still answer (the lean
    path needs no FastAPI dependency) and the others fail in the route."""
    app = create_app(Settings(database_url=database_url))

    def broken() -> None:
        raise RuntimeError("the FastAPI route was used")

    app.dependency_overrides[get_live_registry] = broken
    with TestClient(app, raise_server_exceptions=False) as client:
        assert post(client, '{"strain": [0.1], "alias": "candidate"}').status_code == 200
        assert post(client, f'{{"strain": {MANY}}}').status_code == 200
        assert post(client, '{"strain": [0.1], "tangent": true}').status_code == 500


def test_lean_answers_are_counted_like_the_routes(lean: TestClient, route_only: TestClient
                                                  ) -> None:
    def counts(test_client: TestClient) -> dict:
        for body in ('{"strain": [0.1, 0.2]}', '{"strain": [0.1], "version": 2}',
                     '{"strain": [0.1], "version": 7}'):
            post(test_client, body)
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(test_client.get("/metrics").text)
                for s in family.samples
                if s.name.startswith(("surrogate_http_requests", "surrogate_points",
                                      "surrogate_http_errors", "surrogate_http_request_dur"))
                and not s.name.endswith(("_sum", "_bucket"))}

    lean_counts, route_counts = counts(lean), counts(route_only)
    assert lean_counts == route_counts
    assert lean_counts[("surrogate_http_requests_total", (
        ("method", "POST"), ("model", "demo"), ("route", "/v1/models/{name}/predict"),
        ("status", "200"), ("version", "1")))] == 1



def test_bodies_in_several_chunks_on_a_real_server(tmp_path: Path) -> None:
    """uvicorn hands a chunked body over in several messages: the lean path reads them all,
    and replays them to the route when it does not answer itself."""
    def chunked(connection: http.client.HTTPConnection, chunks: list[bytes]) -> tuple:
        def slowly() -> Iterator[bytes]:
            for chunk in chunks:
                yield chunk
                time.sleep(0.05)  # separate TCP segments, so separate ASGI messages

        connection.request("POST", "/v1/models/demo/predict", body=slowly(),
                           headers={"content-type": "application/json"}, encode_chunked=True)
        response = connection.getresponse()
        return response.status, response.read()

    with live_server(tmp_path) as server:
        connection = http.client.HTTPConnection(server.base_url.removeprefix("http://"))
        whole = chunked(connection, [b'{"strain": [0.1, 0.2]}'])
        assert chunked(connection, [b'{"strain": [0.1,', b" 0.2]}"]) == whole
        status, content = chunked(connection, [b'{"strain": [0.1, 0.2],', b' "tangent": true}'])
        assert status == 200 and b'"tangent":' in content
        assert chunked(connection, [b'{"strain": [0.1,', b' "x"]}'])[0] == 422


def test_lean_answers_are_logged_like_the_routes(lean: TestClient,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="service.access"):
        response = post(lean, '{"strain": [0.1], "alias": "candidate"}')
    [record] = [r for r in caplog.records if r.name == "service.access"]
    line = json.loads(JsonFormatter().format(record))
    assert response.headers["x-request-id"] == line["request_id"]
    assert (line["status"], line["model"], line["version"]) == (200, "demo", 2)
    assert line["route"] == "/v1/models/{name}/predict"
