"""The registry pages through the app in process (TestClient with lifespan): security
headers, escaping, errors, and a bounded number of database queries per page."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from service.main import create_app
from service.registry.reads import version_detail
from service.settings import Settings
from service.ui.data import model_page, models_overview
from service.ui.routes import CONTENT_SECURITY_POLICY, EXPORT_PATH, has_public_path
from tests.service_process import ServerProcess, free_port, service_command
from tests.ui_registry import HOSTILE, HOSTILE_MODEL, build_many_versions, build_ui_registry

PAGES = ("/", "/ui/", "/ui/models/rubber", "/ui/models/rubber/versions/3",
         "/ui/models/rubber/versions/4?compare=3", f"/ui/models/{HOSTILE_MODEL}",
         f"/ui/models/{HOSTILE_MODEL}/versions/1", "/ui/models/gent/versions/1")


@contextmanager
def app_client(url: str) -> Iterator[TestClient]:
    # Polling once a minute (the most allowed): the poller's queries stay out of the counts.
    settings = Settings(database_url=url, reload_interval_s=60, access_log=False)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 20
        while client.get("/readyz").json()["status"] != "ready":
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.05)
        yield client


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'registry.db'}"
    build_ui_registry(url)
    return url


@pytest.fixture(scope="module")
def client(registry: str) -> Iterator[TestClient]:
    with app_client(registry) as test_client:
        yield test_client


@pytest.mark.parametrize("path", PAGES)
def test_pages_answer_html_with_a_strict_content_security_policy(client: TestClient,
                                                                 path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    # No inline script or style for the policy to allow, and nothing from another origin.
    html = response.text
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_static_files_are_served_with_the_same_headers(client: TestClient) -> None:
    for path, media_type in (("/ui/static/ui.js", "text/javascript"),
                             ("/ui/static/ui.css", "text/css"),
                             ("/ui/static/vendor/uplot/uPlot.iife.min.js", "text/javascript"),
                             ("/ui/static/vendor/uplot/LICENSE", None)):
        response = client.get(path)
        assert response.status_code == 200, path
        if media_type:
            assert response.headers["content-type"].startswith(media_type)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert client.get("/ui/static/../main.py").status_code == 404


def test_root_links_to_the_ui_and_ui_redirects_to_its_slash(client: TestClient) -> None:
    assert 'href="/ui/"' in client.get("/").text
    response = client.get("/ui", follow_redirects=False)
    assert response.status_code in (307, 308) and response.headers["location"].endswith("/ui/")


def test_markup_in_descriptions_and_tags_is_escaped(client: TestClient) -> None:
    escaped = ("&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;img src=x "
               "onerror=&#34;window.__pwned = 2&#34;&gt;&lt;b&gt;x&lt;/b&gt;")
    for path in ("/ui/", f"/ui/models/{HOSTILE_MODEL}", f"/ui/models/{HOSTILE_MODEL}/versions/1"):
        html = client.get(path).text
        assert HOSTILE not in html and "window.__pwned = 1</script>" not in html, path
        assert escaped in html, path


def test_unknown_model_or_version_is_an_html_404_naming_it(client: TestClient) -> None:
    for path, message in (("/ui/models/nope", "model &#39;nope&#39; is not registered"),
                          ("/ui/models/rubber/versions/9", "has no version 9"),
                          ("/ui/models/rubber/versions/3?compare=99", "has no version 99")):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert message in response.text, path
    assert client.get("/ui/models/rubber/versions/0").status_code == 422


def test_compare_redirects_to_the_first_version_with_the_second_overlaid(
        client: TestClient) -> None:
    response = client.get("/ui/models/rubber/compare?a=4&b=2", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/models/rubber/versions/4?compare=2"


def test_pages_carry_no_admin_action_and_no_token(registry: str) -> None:
    token = "s3cret-admin-token-for-ui-test"
    settings = Settings(database_url=registry, admin_token=token, access_log=False)
    with TestClient(create_app(settings)) as client:
        for path in PAGES:
            html = client.get(path).text
            assert token not in html and "/admin" not in html, path
            assert 'method="post"' not in html.lower() and "authorization" not in html.lower()


def test_artifact_download_is_the_stored_blob(client: TestClient) -> None:
    detail = client.get("/v1/models/rubber/versions/3").json()
    response = client.get("/v1/models/rubber/versions/3/artifact")
    assert response.status_code == 200
    assert response.headers["x-artifact-sha256"] == detail["sha256"]
    assert response.headers["content-disposition"] == 'attachment; filename="rubber-v3.npz"'
    from service.artifact import Artifact, sha256_hex
    assert sha256_hex(response.content) == detail["sha256"]
    assert Artifact.from_bytes(response.content).manifest == detail["manifest"]
    assert client.get("/v1/models/rubber/versions/9/artifact").status_code == 404


def count_queries(client: TestClient, path: str) -> int:
    """SQL statements the app's engine ran while serving `path` (poller threads excluded)."""
    engine = client.app.state.session_factory.kw["bind"]
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if not threading.current_thread().name.startswith("registry-"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def test_the_model_page_queries_do_not_grow_with_the_number_of_versions(
        tmp_path: Path) -> None:
    counts = {}
    for versions in (2, 30):
        url = f"sqlite:///{tmp_path / f'many-{versions}.db'}"
        build_many_versions(url, "many", versions)
        with app_client(url) as client:
            html = client.get("/ui/models/many").text
            assert html.count('<tr data-version="') == versions
            counts[versions] = {path: count_queries(client, path)
                                for path in ("/ui/", "/ui/models/many")}
    print(f"queries per page (2 versions, 30 versions): {counts}")
    assert counts[2] == counts[30]
    assert counts[30]["/ui/models/many"] <= 4 and counts[30]["/ui/"] <= 4


@pytest.mark.backends("sqlite", "postgresql")
def test_versions_table_reads_the_metrics_the_api_returns(database_url: str, db_backend: str,
                                                          session: Session) -> None:
    """The metrics come out of the JSON columns in SQL (json_extract / #>>): same numbers
    as the version detail on both databases, and a dash-able None where a fit has none."""
    build_ui_registry(database_url)
    page = model_page(session, "rubber")
    assert [row.version for row in page.versions] == [1, 2, 3, 4]
    for row in page.versions:
        detail = version_detail(session, "rubber", row.version)
        held = detail["metrics"]["held_out"]
        inference = detail["manifest"]["inference"]
        assert (row.method, row.fit_time_s, row.nlpd, row.coverage_95, row.crps,
                row.aleatoric_sd_error, row.aliases, row.status, row.registered_by) == (
            inference["method"], inference["wall_time_s"], held["nlpd"],
            held["coverage"]["0.95"], held["crps"], detail["metrics"]["aleatoric_sd_error"],
            detail["aliases"], detail["status"], detail["registered_by"])
        spread = held.get("spread")
        assert (row.spread is None) == (spread is None)  # none before folds (v1, v2)
        if spread is not None:
            coverage = spread["coverage"]["0.95"]
            assert (row.spread.units, row.spread.unit, row.spread.nlpd_se, row.spread.nlpd_low,
                    row.spread.nlpd_high, row.spread.coverage_95_low,
                    row.spread.coverage_95_high) == (
                spread["units"], spread["unit"], spread["nlpd"]["se"],
                spread["nlpd"]["low_95"], spread["nlpd"]["high_95"], coverage["low_95"],
                coverage["high_95"])
    bare = model_page(session, "gent").versions[0]
    assert (bare.nlpd, bare.coverage_95, bare.aleatoric_sd_error) == (None, None, None)
    assert bare.spread is None
    overview = {row.name: row for row in models_overview(session)}
    assert sorted(overview) == ["gent", HOSTILE_MODEL, "rubber"]
    assert (overview["rubber"].latest_version, overview["rubber"].version_count,
            overview["rubber"].last_registered_by, overview["rubber"].aliases) == (
        4, 4, "bob", {"candidate": 4, "production": 3})


def test_serve_prints_the_ui_url_next_to_the_api(registry: str, tmp_path: Path) -> None:
    port = free_port()
    running = ServerProcess.launch(service_command(port), port,
                                   {"SURROGATE_DATABASE_URL": registry,
                                    "SURROGATE_ACCESS_LOG": "false"}, tmp_path / "serve.log")
    try:
        running.wait_until_ok()
        first = running.log.read_text().splitlines()[0]
        assert first == (f"API: http://127.0.0.1:{port}/ (OpenAPI docs: /docs)   "
                         f"UI: http://127.0.0.1:{port}/ui/")
        assert httpx.get(f"http://127.0.0.1:{port}/ui/", timeout=5).status_code == 200
    finally:
        running.stop()


def test_export_links_download_every_format(client: TestClient) -> None:
    html = client.get("/ui/models/rubber/versions/3").text
    for fmt in ("csv", "json", "abaqus", "lsdyna"):
        href = f"/v1/models/rubber/export?version=3&amp;format={fmt}"
        assert f'href="{href}"' in html, fmt
        response = client.get(href.replace("&amp;", "&"))
        assert response.status_code == 200, (fmt, response.text[:300])
        assert response.content


def test_export_links_only_when_the_service_has_the_export_route() -> None:
    bare = FastAPI()
    bare.add_api_route("/v1/models/{name}", lambda name: name, methods=["GET"])
    assert not has_public_path(bare, EXPORT_PATH)
    assert has_public_path(create_app(Settings()), EXPORT_PATH)


class _Cells(HTMLParser):
    """The text of every element carrying `attribute`, keyed by (the value of `row` on its
    enclosing row, the attribute's value)."""

    def __init__(self, attribute: str, row: str) -> None:
        super().__init__()
        self.attribute, self.row = attribute, row
        self.cells: dict[tuple[str | None, str], str] = {}
        self._row: str | None = None
        self._open: tuple[str | None, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and self.row in found:
            self._row = found[self.row]
        if self.attribute in found:
            self._open = (self._row, found[self.attribute] or "")
            self.cells[self._open] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "dd"):
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.cells[self._open] += data


def cells(html: str, attribute: str, row: str) -> dict[tuple[str | None, str], str]:
    parser = _Cells(attribute, row)
    parser.feed(html)
    return {key: " ".join(text.split()) for key, text in parser.cells.items()}


def test_model_page_shows_the_spread_of_held_out_scores_and_dashes_without_one(
        client: TestClient) -> None:
    """Versions 3 and 4 were stored with folds and a spread over materials, 1 and 2
    before there was one: the table and the chart bands show each as stored."""
    html = client.get("/ui/models/rubber").text
    table = cells(html, "data-col", "data-version")
    chart = json.loads(unescape(re.search(r"data-chart='([^']*)'", html).group(1)))
    for version in (1, 2, 3, 4):
        held = client.get(f"/v1/models/rubber/versions/{version}").json()["metrics"]["held_out"]
        index = chart["versions"].index(version)
        row = {col: text for (v, col), text in table.items() if v == str(version)}
        spread = held.get("spread")
        if spread is None:
            assert (row["nlpd_se"], row["coverage_95_interval"], row["held_out_units"]) == (
                "—", "—", "—")
            assert chart["nlpd_low"][index] is None and chart["coverage_95_high"][index] is None
            continue
        coverage = spread["coverage"]["0.95"]
        assert row["nlpd_se"] == f"± {spread['nlpd']['se']:.3f}"
        assert row["coverage_95_interval"] == (
            f"{coverage['low_95']:.3f}–{coverage['high_95']:.3f}")
        assert row["held_out_units"] == "40 materials"
        assert (chart["nlpd_low"][index], chart["nlpd_high"][index]) == (
            spread["nlpd"]["low_95"], spread["nlpd"]["high_95"])
        assert (chart["coverage_95_low"][index], chart["coverage_95_high"][index]) == (
            coverage["low_95"], coverage["high_95"])


def test_version_page_shows_intervals_over_materials_and_each_fold(client: TestClient) -> None:
    detail = client.get("/v1/models/rubber/versions/4").json()
    held = detail["metrics"]["held_out"]
    html = client.get("/ui/models/rubber/versions/4").text
    table = html.split('id="metrics"', 1)[1].split("</table>", 1)[0]
    spread = cells(table, "data-spread", "data-metric")
    nlpd = held["spread"]["nlpd"]
    assert spread[("nlpd", "nlpd")] == (
        f"{nlpd['low_95']:.3f} – {nlpd['high_95']:.3f} (SE {nlpd['se']:.3f})")
    coverage = held["spread"]["coverage"]["0.95"]
    assert spread[("coverage_0.95", "coverage_0.95")].startswith(
        f"{coverage['low_95']:.3f} – {coverage['high_95']:.3f}")
    assert spread[("rows", "rows")] == "40 materials"
    assert "2000 rows of 40 materials in 5 folds" in " ".join(html.split())
    folds = re.findall(r'<tr data-fold="(\d+)">', html.split('id="folds"', 1)[1].split(
        "</table>", 1)[0])
    assert folds == [str(fold["fold"]) for fold in held["folds"]] == ["1", "2", "3", "4", "5"]


def test_version_page_shows_scores_at_untested_conditions_where_stored(
        client: TestClient) -> None:
    conditions = client.get("/v1/models/rubber/versions/4").json()["metrics"][
        "held_out_conditions"]
    html = client.get("/ui/models/rubber/versions/4").text
    text = " ".join(html.split())
    assert ("between the conditions it kept (temperature=273.15 K; temperature=296.15 K; "
            "temperature=323.15 K)") in text
    table = html.split('id="metrics-conditions"', 1)[1].split("</table>", 1)[0]
    spread = cells(table, "data-spread", "data-metric")
    coverage = conditions["spread"]["coverage"]["0.95"]
    assert spread[("coverage_0.95", "coverage_0.95")].startswith(
        f"{coverage['low_95']:.3f} – {coverage['high_95']:.3f}")
    assert f"{conditions['nlpd']:.3f}" in table
    assert 'id="folds-conditions"' in html
    assert 'id="metrics-conditions"' not in client.get("/ui/models/rubber/versions/3").text


def test_version_page_says_when_the_scatter_was_widened_and_by_what(
        client: TestClient) -> None:
    text = " ".join(client.get("/ui/models/rubber/versions/4").text.split())
    assert ("serves every draw's scatter widened &times;1.87: held-out 95% coverage 0.621 "
            "as fitted, 0.941 widened") in text
    refused = " ".join(client.get("/ui/models/rubber/versions/3").text.split())
    assert ("asked for a band &times;1.61 wider, which their folds did not confirm: this "
            "version is served as fitted") in refused
    assert 'id="scatter-widening"' not in client.get("/ui/models/rubber/versions/2").text


def test_a_version_stored_before_folds_shows_its_single_split_without_a_spread(
        client: TestClient) -> None:
    html = client.get("/ui/models/rubber/versions/2").text
    spread = cells(html, "data-spread", "data-metric")
    assert spread and set(spread.values()) == {"—"}
    text = " ".join(html.split())
    assert "one split (3 materials)" in text and "without the spread" in text
    assert 'id="folds"' not in html
    bare = client.get("/ui/models/gent/versions/1").text
    assert "No held-out scores were stored" in bare


def test_a_covariate_version_page_lists_its_covariates_and_tested_conditions(
    covariate_fit, database_url: str
) -> None:
    import json
    import re
    from html import unescape

    from service.registry.db import make_engine, make_session_factory
    from tests.covariate_fit import register_models

    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        register_models(session, covariate_fit)
    engine.dispose()
    with app_client(database_url) as client:
        html = client.get("/ui/models/hot/versions/1").text
        rows = dict(re.findall(r'<tr data-covariate="(\w+)">(.*?)</tr>', html, re.S))
        assert list(rows) == ["temperature", "rate"]

        def cell(name: str, column: str) -> str:
            found = re.search(rf'data-col="{column}">(.*?)</td>', rows[name], re.S)
            assert found, (name, column)
            return unescape(found.group(1)).strip()

        assert cell("temperature", "unit") == "K" and cell("rate", "unit") == "1/s"
        assert cell("temperature", "range") == "273.15 … 323.15"
        assert cell("rate", "range") == "0.01 … 0.1"
        assert 'data-col="scale"' not in rows["rate"]  # a factor of 10: a linear scale
        # How much each covariate moves the level: the manifest's figure, to 3 decimals.
        for j, name in enumerate(("temperature", "rate")):
            change = covariate_fit.artifact.manifest["covariates"][j]["log_level_change"]
            assert cell(name, "level") == f"ln {change:.3f}"
        assert cell("temperature", "tested") == "273.15, 296.15, 323.15"
        table = html.split('id="tested-conditions"')[1].split("</table>")[0]
        conditions = re.findall(r"<tr><td class=\"num\">(.*?)</td><td class=\"num\">(.*?)</td>",
                                table)
        assert sorted((float(t), float(r)) for t, r in conditions) == sorted(
            map(tuple, covariate_fit.artifact.manifest["tested_conditions"]))
        # "Try it" has one input per covariate, at the central tested condition.
        inputs = dict(re.findall(r'data-covariate="(\w+)" value="([^"]+)"', html))
        assert inputs == {"temperature": "296.15", "rate": "0.01"}
        config = json.loads(unescape(re.search(r"data-try-it='([^']*)'", html).group(1)))
        assert [c["name"] for c in config["covariates"]] == ["temperature", "rate"]
        assert config["covariates"][0]["min"] == 273.15
        # The export links answer at that condition.
        links = re.findall(r'href="(/v1/models/hot/export[^"]*)"', html)
        assert len(links) == 4
        for href in links:
            href = unescape(href)
            assert "covariates=temperature:296.15,rate:0.01" in href
            response = client.get(href)
            assert response.status_code == 200, response.text[:300]
        # A model without covariates shows no covariate section and no covariate input.
        plain = client.get("/ui/models/plain/versions/1").text
        assert 'id="covariates"' not in plain and "data-covariate" not in plain
        assert "covariates=" not in plain
