"""Operations: /metrics counts traffic by model and version, every response carries a
request id, and logs are JSON lines that include it."""

import json
import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from service.observability import JsonFormatter
from service.registry.writes import register, set_alias
from tests.service_process import random_artifact


@pytest.fixture
def registered(session: Session) -> None:
    register(session, "demo", random_artifact(seed=31).to_bytes(), actor="test")
    register(session, "demo", random_artifact(seed=32).to_bytes(), actor="test")
    set_alias(session, "demo", "production", 1, actor="test")
    session.commit()


def samples(client: TestClient) -> dict[tuple[str, tuple], float]:
    text = client.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_and_points_by_model_and_version(
    client: TestClient, registered
) -> None:
    for _ in range(3):
        client.post("/v1/models/demo/predict", json={"strain": [0.1, 0.2]})  # v1, 2 points
    client.post("/v1/models/demo/predict", json={"strain": [0.0] * 5, "version": 2})
    client.post("/v2/models/demo/versions/2/infer", json={"inputs": [
        {"name": "strain", "shape": [4], "datatype": "FP64", "data": [0.1] * 4}]})
    client.post("/v1/models/demo/predict", json={"strain": []})  # 422, no model resolved
    client.post("/v1/models/nope/predict", json={"strain": [0.1]})  # 404

    metrics = samples(client)
    route = "/v1/models/{name}/predict"
    assert value(metrics, "surrogate_http_requests_total", method="POST", route=route,
                 status="200", model="demo", version="1") == 3
    assert value(metrics, "surrogate_http_requests_total", method="POST", route=route,
                 status="200", model="demo", version="2") == 1
    assert value(metrics, "surrogate_http_requests_total", method="POST",
                 route="/v2/models/{name}/versions/{version}/infer", status="200",
                 model="demo", version="2") == 1
    assert value(metrics, "surrogate_points_predicted_total", model="demo", version="1") == 6
    assert value(metrics, "surrogate_points_predicted_total", model="demo", version="2") == 9
    assert value(metrics, "surrogate_http_errors_total", method="POST", route=route,
                 status="422", model="", version="") == 1
    assert value(metrics, "surrogate_http_errors_total", method="POST", route=route,
                 status="404", model="", version="") == 1
    assert value(metrics, "surrogate_http_request_duration_seconds_count", method="POST",
                 route=route, model="demo", version="1") == 3
    assert value(metrics, "surrogate_loaded_versions", model="demo", version="1") == 1
    assert value(metrics, "surrogate_loaded_versions", model="demo", version="2") == 1
    # Unknown names never become label values (fuzzed URLs cannot explode cardinality).
    assert not any(dict(labels).get("model") == "nope" for _, labels in metrics)


def test_request_id_is_echoed_or_created(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "sim-42.step-7"})
    assert given.headers["x-request-id"] == "sim-42.step-7"
    created = client.get("/healthz").headers["x-request-id"]
    assert len(created) == 32 and created != client.get("/healthz").headers["x-request-id"]
    # A hostile id (header injection, megabytes) is replaced, not echoed.
    replaced = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert replaced.headers["x-request-id"] != "x" * 500
    error = client.get("/v1/nowhere", headers={"X-Request-ID": "err-1"})
    assert error.status_code == 404 and error.headers["x-request-id"] == "err-1"


def test_access_log_is_a_json_line_with_the_request_id(
    client: TestClient, registered, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="service.access"):
        client.post("/v1/models/demo/predict", json={"strain": [0.1]},
                    headers={"X-Request-ID": "abc-123", "Authorization": "Bearer s3cret"})
    [record] = [r for r in caplog.records if r.name == "service.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc-123"
    assert (line["status"], line["model"], line["version"]) == (200, "demo", 1)
    assert line["route"] == "/v1/models/{name}/predict" and line["duration_ms"] > 0
    assert "s3cret" not in json.dumps(line)


def test_a_text_log_line_cannot_be_forged_through_the_path(tmp_path) -> None:
    """SURROGATE_LOG_FORMAT=text: a `%0A` (or CR, or U+2028) in the URL stays inside its
    access line, escaped; a traceback's lines are indented."""
    import re

    import httpx

    from tests.live_server import live_server

    with live_server(tmp_path, SURROGATE_ACCESS_LOG="true",
                     SURROGATE_LOG_FORMAT="text") as server:
        for path in ("/healthz%0AFORGED%20INFO%20line", "/x%0D%0AFORGED%20crlf",
                     "/y%E2%80%A8FORGED%20ls"):
            assert httpx.get(server.base_url + path, timeout=10).status_code == 404
        log = server.log.read_text()
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith("FORGED")], log[-2000:]
    assert any("/healthz\\nFORGED INFO line 404" in line for line in lines), log[-2000:]
    assert any("/x\\r\\nFORGED crlf 404" in line for line in lines)
    assert any("/y\\u2028FORGED ls 404" in line for line in lines)
    service_lines = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert len(service_lines) >= 3


def test_the_text_format_escapes_messages_and_indents_tracebacks() -> None:
    from service.observability import TextFormatter

    record = logging.LogRecord("service.x", logging.ERROR, __file__, 1, "boom %s",
                               ("a\nb",), None)
    try:
        raise ValueError("bad\nFORGED")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    text = TextFormatter("%(levelname)s %(message)s").format(record)
    first, *rest = text.split("\n")
    assert first == "ERROR boom a\\nb"
    assert rest and all(line.startswith("    ") for line in rest)
