"""Admission by cost: a request over the time or memory budget is a 413 naming what to
reduce, before any work, on every HTTP way in (native route and lean path, OIP JSON and
binary, export); heavy requests beyond the replica's slots are 503 with Retry-After; a
request whose deadline passed stops with 504. (gRPC: tests/test_oip_grpc.py; a client
that leaves: tests/test_interrupts.py.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from unittest import mock

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.api import fast_predict, json_body
from service.api.deps import get_live_registry
from service.main import create_app
from service.prediction import admission
from service.registry.writes import register, set_alias
from service.settings import Settings
from tests.rubber_model import rubber_artifact
from tests.service_process import random_artifact

BUDGET_S = 0.05  # 1,000-strain summaries of the 200-draw model fit; 99 levels do not


@pytest.fixture
def registered(session: Session) -> None:
    register(session, "demo", random_artifact(draws=200, seed=3).to_bytes(), actor="test")
    set_alias(session, "demo", "production", 1, actor="test")
    session.commit()


def app_client(database_url: str, **options) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url, **options)))


@pytest.fixture
def client(database_url: str, registered) -> Iterator[TestClient]:
    with app_client(database_url, request_time_budget_s=BUDGET_S) as test_client:
        yield test_client


def error_of(response) -> dict:
    assert response.status_code == 413, response.text[:400]
    return response.json()["error"]


STRAIN = np.linspace(-0.4, 0.4, 1_000).tolist()


def test_a_request_within_the_budget_is_answered(client: TestClient) -> None:
    answer = client.post("/v1/models/demo/predict", json={"strain": STRAIN})
    assert answer.status_code == 200
    assert client.post("/v1/models/demo/predict",
                       json={"strain": STRAIN[:10], "quantiles": [0.5]}).status_code == 200


@pytest.mark.parametrize("options,largest", [
    ({"quantiles": list(np.linspace(0.01, 0.99, 99))}, "quantiles"),
    ({"draws": 5_000}, "draws"),
])
def test_a_request_over_the_budget_is_a_413_naming_what_to_reduce(
        client: TestClient, options: dict, largest: str) -> None:
    error = error_of(client.post("/v1/models/demo/predict",
                                 json={"strain": STRAIN, **options}))
    assert error["code"] == "payload_too_large"
    assert "reduce strain" in error["message"] and largest in error["message"]
    strain_detail, largest_detail = error["details"]
    assert strain_detail["field"] == "strain" and 0 < strain_detail["limit"] < len(STRAIN)
    assert largest_detail["field"] == largest
    # What the 413 says fits does fit.
    fitted = client.post("/v1/models/demo/predict",
                         json={"strain": STRAIN[:strain_detail["limit"]], **options})
    assert fitted.status_code == 200, fitted.text[:300]


def test_the_memory_budget_refuses_an_answer_too_large_to_hold(
        database_url: str, registered) -> None:
    with app_client(database_url, request_memory_mb=64) as test_client:
        error = error_of(test_client.post("/v1/models/demo/predict",
                                          json={"strain": STRAIN, "draws": 10_000}))
    assert "MiB" in error["message"] and "64 MiB per request" in error["message"]


def test_the_lean_path_refuses_by_cost_with_the_routes_bytes(database_url: str,
                                                             registered) -> None:
    """A plain request (the lean path answers it) over the budget: the same 413 as the
    route's."""
    body = {"strain": np.linspace(-0.4, 0.4, 20_000).tolist()}
    answers = []
    for fast in (True, False):
        with app_client(database_url, request_time_budget_s=0.01,
                        fast_predict=fast) as test_client:
            answers.append(test_client.post("/v1/models/demo/predict", json=body))
    assert answers[0].status_code == answers[1].status_code == 413
    assert answers[0].content == answers[1].content


def oip_body(count: int) -> dict:
    return {"inputs": [{"name": "strain", "shape": [count], "datatype": "FP64",
                        "data": np.linspace(-0.4, 0.4, count).tolist()}],
            "outputs": [{"name": "mean"}, {"name": "tangent"}]}


def test_oip_json_and_binary_requests_are_admitted_by_cost(database_url: str,
                                                           registered) -> None:
    count = 20_000
    with app_client(database_url, request_time_budget_s=0.01) as test_client:
        as_json = error_of(test_client.post("/v2/models/demo/infer", json=oip_body(count)))
        header = json.dumps({"inputs": [{"name": "strain", "shape": [count],
                                         "datatype": "FP64",
                                         "parameters": {"binary_data_size": 8 * count}}]})
        binary = test_client.post(
            "/v2/models/demo/infer",
            content=header.encode() + np.zeros(count).tobytes(),
            headers={"inference-header-content-length": str(len(header))})
        small = test_client.post("/v2/models/demo/infer", json=oip_body(10))
    assert as_json["details"][0]["field"] == "inputs[0].shape"
    assert error_of(binary)["details"][0]["field"] == "inputs[0].shape"
    assert small.status_code == 200


def test_an_export_over_the_budget_is_a_413_naming_points(client: TestClient) -> None:
    error = error_of(client.get("/v1/models/demo/export",
                                params={"points": 100_001, "quantiles": "0.05,0.5,0.95"}))
    assert error["details"][0]["field"] == "points"
    fits = error["details"][0]["limit"]
    assert 2 <= fits < 100_001
    assert client.get("/v1/models/demo/export", params={
        "points": fits, "quantiles": "0.05,0.5,0.95"}).status_code == 200


def test_fitting_more_cards_than_the_budget_allows_is_a_413_naming_curves(
        database_url: str, session: Session) -> None:
    """Card fitting is counted: 256 form=auto cards (about 0.16 s each) exceed the default
    10 s budget whatever the grid, so the 413 comes before any table or fit and names
    `curves` as the part to reduce; as many Mooney-Rivlin cards (one linear programme
    each) fit, and are answered."""
    register(session, "rubber", rubber_artifact().to_bytes(), actor="test")
    session.commit()
    with app_client(database_url) as test_client:
        with mock.patch("service.export.fit_cards",
                        side_effect=AssertionError("no card may be fitted")):
            refused = test_client.get("/v1/models/rubber/export", params={
                "format": "calculix", "curves": 255, "points": 41})
        named = test_client.get("/v1/models/rubber/export", params={
            "format": "json", "form": "mooney_rivlin", "curves": 255, "points": 41})
    error = error_of(refused)
    assert "fitting 256 auto cards" in error["message"]
    assert [d["field"] for d in error["details"]] == ["points", "curves"]
    assert error["details"][0]["limit"] == 0
    assert named.status_code == 200, named.text[:300]
    assert len(named.json()["cards"]) == 256


def test_an_unreachable_interpolation_error_is_refused_before_any_grid_is_built(
        database_url: str, registered) -> None:
    """With a budget no large grid fits, the refusal names max_interpolation_error (422),
    not the budget (413): it came first, from the coarse probe."""
    with app_client(database_url, request_time_budget_s=0.001) as test_client:
        answer = test_client.get("/v1/models/demo/export", params={
            "max_interpolation_error": 1e-12, "curves": 50})
    assert answer.status_code == 422, answer.text[:300]
    error = answer.json()["error"]
    assert error["details"][0]["field"] == "max_interpolation_error"
    assert "points would meet it" in error["message"] or "no grid" in error["message"]


def test_heavy_requests_beyond_the_slots_are_a_503_with_retry_after(
        database_url: str, registered) -> None:
    heavy = admission.Estimate((admission.Term("held by the test", "strain", 30.0),))
    with app_client(database_url, max_heavy_requests=1) as test_client:
        gate = test_client.app.state.work_gate
        with gate.admit(heavy):  # the one slot is taken
            busy = test_client.post("/v1/models/demo/predict",
                                    json={"strain": STRAIN, "draws": 500})
            light = test_client.post("/v1/models/demo/predict", json={"strain": STRAIN})
            busy_oip = test_client.post("/v2/models/demo/infer", json=oip_body(200_000))
        after = test_client.post("/v1/models/demo/predict",
                                 json={"strain": STRAIN, "draws": 500})
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
    assert 25 <= int(busy.headers["retry-after"]) <= 30  # the running request's estimate
    assert busy_oip.status_code == 503 and "retry-after" in busy_oip.headers
    assert light.status_code == 200  # a light request never waits for a slot
    assert after.status_code == 200  # the slot was given back


def test_a_request_whose_deadline_passed_stops_with_a_504(database_url: str,
                                                          registered) -> None:
    with app_client(database_url, request_deadline_s=1e-6) as test_client:
        answer = test_client.post("/v1/models/demo/predict",
                                  json={"strain": STRAIN, "quantiles": [0.5]})
        export = test_client.get("/v1/models/demo/export", params={"points": 1_001})
    assert answer.status_code == 504 and answer.json()["error"]["code"] == "deadline_exceeded"
    assert export.status_code == 504


def test_a_large_body_with_options_is_parsed_once_by_the_lean_path(
        database_url: str, registered) -> None:
    """With the route's registry dependency broken, a large body with quantiles is still
    answered: the lean path parsed it (off the loop) and answered; FastAPI never parsed it
    a second time."""
    body = json.dumps({"strain": np.linspace(-0.4, 0.4, 20_000).tolist(),
                       "quantiles": [0.5]}).encode()
    assert len(body) > fast_predict.INLINE_PARSE_BYTES
    app = create_app(Settings(database_url=database_url))

    def broken() -> None:
        raise RuntimeError("the FastAPI route was used")

    app.dependency_overrides[get_live_registry] = broken
    with TestClient(app, raise_server_exceptions=False) as test_client:
        answer = test_client.post("/v1/models/demo/predict", content=body,
                                  headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text[:300]
    assert len(answer.json()["quantiles"][0]) == 20_000


def test_the_oip_route_decodes_a_large_body_off_the_event_loop(
        database_url: str, registered) -> None:
    """json.loads runs in a worker thread, not the event loop's."""
    decoded_in, decode = [], json.loads

    def loads(raw: bytes):
        decoded_in.append(threading.current_thread())
        return decode(raw)

    body = json.dumps(oip_body(20_000)).encode()
    with app_client(database_url) as test_client, \
            mock.patch.object(json_body.json, "loads", side_effect=loads):
        loop_thread = test_client.portal.call(threading.current_thread)
        answer = test_client.post("/v2/models/demo/infer", content=body)
    assert answer.status_code == 200, answer.text[:300]
    assert len(decoded_in) == 1 and decoded_in[0] is not loop_thread


def test_a_body_of_more_values_than_the_point_limit_allows_is_a_413_as_it_arrives(
        database_url: str, registered) -> None:
    """Short numbers pack many values per byte: the separators are counted."""
    with app_client(database_url, max_points_per_request=1_000) as test_client:
        limit = test_client.app.state.settings.max_request_bytes
        zeros = b'{"strain": [' + b"0," * 5_000 + b"0]}"
        assert len(zeros) < limit  # within the byte limit, over the value count
        answer = test_client.post("/v1/models/demo/predict", content=zeros,
                                  headers={"content-type": "application/json"})
        too_long = test_client.post("/v1/models/demo/predict",
                                    content=b" " * (limit + 1),
                                    headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "values" in answer.json()["error"]["message"]
    assert too_long.status_code == 413
    assert limit == (1_000 + 2 * 1_000 + 1024) * 26 + 64 * 1024  # follows the point limit


def test_a_replica_that_runs_slower_than_estimated_admits_less(database_url: str,
                                                               registered) -> None:
    body = {"strain": STRAIN, "quantiles": list(np.linspace(0.01, 0.99, 99))}
    with app_client(database_url, request_time_budget_s=BUDGET_S) as test_client:
        gate = test_client.app.state.work_gate
        assert gate.slowdown == 1.0
        at_reference = error_of(test_client.post("/v1/models/demo/predict", json=body))
        # Heavy requests measured at 5x their estimates (a loaded node).
        for _ in range(10):
            gate.measured(admission.Estimate((admission.Term("t", "strain", 1.0),)), 5.0)
        slowed = error_of(test_client.post("/v1/models/demo/predict", json=body))
        metrics = test_client.get("/metrics").text
    assert 4.0 < gate.slowdown <= 5.0
    assert f"surrogate_replica_slowdown {gate.slowdown}" in metrics
    assert slowed["details"][0]["limit"] < at_reference["details"][0]["limit"] / 3
    assert "slower than the reference" in slowed["message"]


def test_the_estimated_work_may_take_only_its_share_of_the_time_budget() -> None:
    """The rest of the budget is for light requests sharing the cores and the estimate's
    error: work estimated at the whole budget is refused, at its share admitted."""
    settings = Settings(database_url="sqlite://", request_time_budget_s=10.0)
    share = admission.BUDGET_WORK_SHARE
    assert 0 < share < 1

    def work(seconds: float) -> admission.Estimate:
        return admission.Estimate((admission.Term("work", "strain", seconds),))

    assert admission.within_budget(work(10.0 * share), settings)
    assert not admission.within_budget(work(10.0 * share * 1.01), settings)
    assert not admission.within_budget(work(10.0 * share), settings, slowdown=1.1)
