"""The registry pages in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium) against a live service process over a registry of several models:
hand-built versions with plausible manifests, and one tiny real PyMC fit with its report.

Every test fails on any browser console error (which includes Content-Security-Policy
violations and failed loads) and on any request to another origin. Screenshots of the
three page types go to tests/output/ui/.

One module, longer than most, so that the browser, the tiny fit and the live server start
once for all of these tests (together they cost most of the module's time).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from service.artifact import sha256_hex
from tests.service_process import ServerProcess, free_port, service_command
from tests.ui_registry import (
    HOSTILE,
    HOSTILE_MODEL,
    REAL_FIT_MODEL,
    add_real_fit,
    build_ui_registry,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).parent / "output" / "ui"

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("SURROGATE_REQUIRE_BROWSER") == "1":
        raise RuntimeError("chromium and chromium-driver are not installed "
                           "(scripts/system-deps.sh installs them)")
    pytest.skip("chromium / chromium-driver not installed", allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

COVARIATE_MODEL = "hot"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, covariate_fit) -> Iterator[ServerProcess]:
    from training.registration import FitRegistration, register_in_database, report_files

    folder = tmp_path_factory.mktemp("ui")
    url = f"sqlite:///{folder / 'registry.db'}"
    build_ui_registry(url)
    add_real_fit(url, folder)
    # A tiny real fit with covariates (temperature, rate) and its report.
    manifest = covariate_fit.artifact.manifest
    register_in_database(url, FitRegistration(
        COVARIATE_MODEL, covariate_fit.artifact.to_bytes(), alias="production",
        files=report_files(manifest)))
    port = free_port()
    running = ServerProcess.launch(service_command(port), port,
                                   {"SURROGATE_DATABASE_URL": url,
                                    "SURROGATE_ACCESS_LOG": "false"}, folder / "server.log")
    try:
        running.wait_until_ok()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--disable-default-apps", "--window-size=1280,1600",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        # Never let Selenium Manager download a driver or browser: the paths are given.
        patch.setenv("SE_OFFLINE", "true")
        browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def page(driver: Any, server: ServerProcess) -> Iterator[Any]:
    """The browser, with its logs checked after the test: no console error, no request
    that left the service's origin."""
    driver.get_log("browser")
    driver.get_log("performance")
    yield driver
    check_browser_logs(driver, server.url)


def check_browser_logs(driver: Any, base_url: str) -> None:
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], f"browser console errors: {errors}"
    origin = urlsplit(base_url)
    foreign = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        url = urlsplit(message["params"]["request"]["url"])
        if url.scheme in ("data", "blob", "about"):
            continue
        if (url.scheme, url.netloc) != (origin.scheme, origin.netloc):
            foreign.append(url.geturl())
    assert foreign == [], f"requests to another origin: {foreign}"


def api(server: ServerProcess, path: str) -> Any:
    response = httpx.get(f"{server.url}{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def wait(driver: Any, condition: Any, timeout: float = 20) -> Any:
    return WebDriverWait(driver, timeout).until(condition)


def texts(driver: Any, selector: str) -> list[str]:
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, selector)]


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def assert_not_executed(driver: Any) -> None:
    assert driver.execute_script("return window.__pwned === undefined") is True


def test_home_links_to_the_ui(page: Any, server: ServerProcess) -> None:
    page.get(f"{server.url}/")
    page.find_element(By.ID, "ui-link").click()
    wait(page, lambda d: d.current_url == f"{server.url}/ui/")
    assert page.find_element(By.TAG_NAME, "h1").text == "Models"


def test_models_page_lists_models_aliases_and_latest_versions(page: Any,
                                                              server: ServerProcess) -> None:
    page.get(f"{server.url}/ui/")
    names = [row.get_attribute("data-model")
             for row in page.find_elements(By.CSS_SELECTOR, "#models tbody tr")]
    assert names == [model["name"] for model in api(server, "/v1/models")]
    rubber = page.find_element(By.CSS_SELECTOR, 'tr[data-model="rubber"]')
    aliases = [badge.text for badge in rubber.find_elements(By.CSS_SELECTOR, ".aliases .badge")]
    assert aliases == ["candidate → v4", "production → v3"]
    assert rubber.find_element(By.CSS_SELECTOR, ".latest a").text == "v4"
    assert rubber.find_element(By.CSS_SELECTOR, ".by").text == "bob"
    detail = api(server, "/v1/models/rubber")
    assert rubber.find_element(By.CSS_SELECTOR, ".description").text == detail["description"]
    latest = api(server, "/v1/models/rubber/versions/4")
    assert rubber.find_element(By.CSS_SELECTOR, ".when").text == (
        latest["created_at"][:16].replace("T", " ") + " UTC")
    # The description holding markup shows as text and nothing in it ran.
    hostile = page.find_element(By.CSS_SELECTOR, f'tr[data-model="{HOSTILE_MODEL}"]')
    assert hostile.find_element(By.CSS_SELECTOR, ".description").text == HOSTILE
    assert hostile.find_element(By.CSS_SELECTOR, ".badge.tag").text == f"note={HOSTILE}"
    assert hostile.find_elements(By.CSS_SELECTOR, "script, img, b") == []
    assert_not_executed(page)


def test_model_page_table_and_charts_show_the_api_values(page: Any,
                                                         server: ServerProcess) -> None:
    page.get(f"{server.url}/ui/models/rubber")
    wait(page, lambda d: d.execute_script(
        "return Object.keys(window.surrogateUi.plots).length") == 3)
    rows = page.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    assert [row.get_attribute("data-version") for row in rows] == ["4", "3", "2", "1"]
    chart = page.execute_script("return window.surrogateUi.metrics")
    assert chart["production"] == 3
    for row in rows:
        version = int(row.get_attribute("data-version"))
        detail = api(server, f"/v1/models/rubber/versions/{version}")
        held = detail["metrics"]["held_out"]
        cell = {c.get_attribute("data-col"): c.text
                for c in row.find_elements(By.CSS_SELECTOR, "td[data-col]")}
        spread = held.get("spread")  # versions 1 and 2 were stored without one
        coverage = spread["coverage"]["0.95"] if spread else None
        assert cell == {
            "method": detail["manifest"]["inference"]["method"],
            "fit_time": f"{detail['manifest']['inference']['wall_time_s']:.1f} s",
            "nlpd": f"{held['nlpd']:.3f}",
            "nlpd_se": f"± {spread['nlpd']['se']:.3f}" if spread else "—",
            "coverage_95": f"{held['coverage']['0.95']:.3f}",
            "coverage_95_interval": (f"{coverage['low_95']:.3f}–{coverage['high_95']:.3f}"
                                     if spread else "—"),
            "held_out_units": "40 materials" if spread else "—",
            "aleatoric_sd_error": pct(detail["metrics"]["aleatoric_sd_error"]),
        }
        badges = [b.text for b in row.find_elements(By.CSS_SELECTOR, ".badge.alias")]
        assert badges == detail["aliases"]
        assert row.find_element(By.CSS_SELECTOR, ".badge[class*=status]").text == detail["status"]
        index = chart["versions"].index(version)
        plotted = page.execute_script(
            "return window.surrogateUi.plots.nlpd.data[1][arguments[0]]", index)
        assert plotted == held["nlpd"]
        band = page.execute_script(
            "var d = window.surrogateUi.plots.nlpd.data;"
            "return [d[2][arguments[0]], d[3][arguments[0]]]", index)
        assert band == ([spread["nlpd"]["low_95"], spread["nlpd"]["high_95"]] if spread
                        else [None, None])
    assert "production" in rows[1].get_attribute("class")
    canvases = page.find_elements(By.CSS_SELECTOR, "#metrics-charts canvas")
    assert len(canvases) == 3 and all(c.size["width"] > 200 for c in canvases)
    # Clicking version 2's point on the NLPD chart opens version 2.
    over = page.find_element(By.CSS_SELECTOR, '[data-metric="nlpd"] .u-over')
    x, y = page.execute_script(
        "var p = window.surrogateUi.plots.nlpd, i = p.data[0].indexOf(2);"
        "return [p.valToPos(2, 'x'), p.valToPos(p.data[1][i], 'y')]")
    offset = (round(x - over.size["width"] / 2), round(y - over.size["height"] / 2))
    ActionChains(page).move_to_element_with_offset(over, *offset).click().perform()
    wait(page, lambda d: d.current_url == f"{server.url}/ui/models/rubber/versions/2")


def test_compare_choice_opens_the_version_with_the_other_overlaid(page: Any,
                                                                  server: ServerProcess) -> None:
    page.get(f"{server.url}/ui/models/rubber")
    Select(page.find_element(By.ID, "compare-a")).select_by_value("4")
    Select(page.find_element(By.ID, "compare-b")).select_by_value("3")
    page.find_element(By.CSS_SELECTOR, "#compare-form button").click()
    wait(page, lambda d: d.current_url.endswith("/ui/models/rubber/versions/4?compare=3"))
    wait(page, lambda d: d.find_element(By.ID, "try-it-chart").get_attribute("data-state")
         == "drawn")
    assert page.execute_script("return window.surrogateUi.tryIt.overlayResponse.version") == 3
    header = texts(page, "#metrics thead th")
    assert header[-1] == "v3 held out"
    held_3 = api(server, "/v1/models/rubber/versions/3")["metrics"]["held_out"]
    nlpd_row = page.find_element(By.CSS_SELECTOR, '#metrics tr[data-metric="nlpd"]')
    assert nlpd_row.find_elements(By.TAG_NAME, "td")[-1].text == f"{held_3['nlpd']:.3f}"


def test_version_page_summary_lineage_figures_and_downloads(page: Any,
                                                            server: ServerProcess) -> None:
    detail = api(server, "/v1/models/rubber/versions/3")
    page.get(f"{server.url}/ui/models/rubber/versions/3")
    title = page.find_element(By.ID, "version-title").text
    assert title.startswith("rubber · version 3") and "production" in title
    summary = page.find_element(By.ID, "summary")
    assert summary.find_element(By.CSS_SELECTOR, '[data-field="method"]').text == (
        detail["manifest"]["inference"]["method"])
    assert page.find_element(By.CSS_SELECTOR, '[data-field="data_sha256"]').text == (
        detail["data_sha256"])
    assert page.find_element(By.CSS_SELECTOR, '[data-field="source"]').text == detail["source"]
    libraries = dict(row.text.split(" ", 1) for row in
                     page.find_elements(By.CSS_SELECTOR, "#library-versions tbody tr"))
    assert libraries == detail["lineage"]["library_versions"]
    held = detail["metrics"]["held_out"]
    coverage = page.find_element(By.CSS_SELECTOR, '#metrics tr[data-metric="coverage_0.95"]')
    assert coverage.find_elements(By.TAG_NAME, "td")[1].text == f"{held['coverage']['0.95']:.3f}"
    assert page.find_element(By.CSS_SELECTOR, '[data-field="aleatoric_sd_error"]').text == (
        pct(detail["metrics"]["aleatoric_sd_error"]))
    assert "r_hat_max" in page.find_element(By.ID, "diagnostics").text
    # Figures: every stored PNG is shown and decoded by the browser.
    images = page.find_elements(By.CSS_SELECTOR, "#figures img")
    assert sorted(i.get_attribute("alt") for i in images) == sorted(
        f["path"] for f in detail["files"])
    for image in images:
        page.execute_script("arguments[0].scrollIntoView()", image)
        wait(page, lambda d, image=image: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image) > 0)
    # Downloads: the artifact link returns the stored bytes; InferenceData is offered.
    links = {a.text: a.get_attribute("href")
             for a in page.find_elements(By.CSS_SELECTOR, "#downloads a")}
    artifact = httpx.get(links["artifact (npz, posterior draws + manifest)"], timeout=10)
    assert sha256_hex(artifact.content) == detail["sha256"]
    assert httpx.get(links["ArviZ InferenceData (netCDF)"], timeout=10).status_code == 200
    exports = {a.get_attribute("data-format"): a.get_attribute("href")
               for a in page.find_elements(By.CSS_SELECTOR, "#downloads a[data-format]")}
    assert sorted(exports) == ["abaqus", "csv", "json", "lsdyna"]
    for href in exports.values():
        assert httpx.get(href, timeout=30).status_code == 200, href
    page.get(f"{server.url}/ui/models/rubber/versions/2")
    assert "ArviZ InferenceData (netCDF)" not in texts(page, "#downloads a")
    assert page.find_elements(By.CSS_SELECTOR, "#figures img") == []


def assert_close(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    assert all(math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12)
               for g, w in zip(got, want, strict=True))


def test_try_it_draws_what_the_predict_api_answers(page: Any, server: ServerProcess) -> None:
    page.get(f"{server.url}/ui/models/rubber/versions/3")
    chart = page.find_element(By.ID, "try-it-chart")
    wait(page, lambda d: chart.get_attribute("data-state") == "drawn")
    state = page.execute_script("return window.surrogateUi.tryIt")
    request = state["request"]
    assert request["version"] == 3 and request["draws"] == 4 and len(request["strain"]) == 121
    domain = api(server, "/v1/models/rubber/versions/3")["manifest"]["training_domain"]
    assert request["strain"][0] < domain["min"] and request["strain"][-1] > domain["max"]
    # The same request from outside the browser gets the same numbers (fixed seed).
    answer = httpx.post(f"{server.url}{state['url']}",
                        json=request, timeout=10).json()
    assert state["response"] == answer
    data = page.execute_script("return window.surrogateUi.plots.tryIt.data")
    assert_close(data[0], answer["strain"])
    mean, total = answer["mean"], answer["total_sd"]
    assert_close(data[-1], mean)  # the mean is drawn last, on top
    assert_close(data[1], [m - 1.96 * s for m, s in zip(mean, total, strict=True)])
    assert_close(data[6], [m + 1.96 * s for m, s in
                           zip(mean, answer["epistemic_sd"], strict=True)])
    assert_close(data[7], [row[0] for row in answer["samples"]])
    assert "outside the training domain" in page.find_element(By.ID, "try-it-status").text

    # A narrower range with version 4 overlaid.
    for field, value in (("strain-min", "-0.2"), ("strain-max", "0.3"),
                         ("strain-points", "11"), ("sample-draws", "2")):
        element = page.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    Select(page.find_element(By.ID, "overlay-version")).select_by_value("4")
    page.find_element(By.ID, "try-it-run").click()
    wait(page, lambda d: d.execute_script(
        "var t = window.surrogateUi.tryIt; return t.overlayResponse && t.request.strain.length")
        == 11)
    wait(page, lambda d: chart.get_attribute("data-state") == "drawn")
    state = page.execute_script("return window.surrogateUi.tryIt")
    assert state["overlayRequest"] == {"strain": state["request"]["strain"], "version": 4}
    overlay = httpx.post(f"{server.url}{state['url']}", json=state["overlayRequest"],
                         timeout=10).json()
    assert state["overlayResponse"] == overlay
    data = page.execute_script("return window.surrogateUi.plots.tryIt.data")
    assert_close(data[-1], overlay["mean"])
    assert len(data) == 1 + 6 + 2 + 1 + 3
    assert page.find_element(By.ID, "legend-overlay").is_displayed()


def test_markup_in_a_model_renders_as_text_on_every_page(page: Any,
                                                         server: ServerProcess) -> None:
    for path in (f"/ui/models/{HOSTILE_MODEL}", f"/ui/models/{HOSTILE_MODEL}/versions/1"):
        page.get(f"{server.url}{path}")
        selector = "#model-description" if path.count("/") == 3 else "#version-description"
        assert page.find_element(By.CSS_SELECTOR, selector).text == HOSTILE
        assert page.find_elements(By.CSS_SELECTOR, "main script, main img:not(#figures img)") \
            == []
        assert_not_executed(page)


def test_screenshots_of_the_three_page_types(page: Any, server: ServerProcess) -> None:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    shots = {
        "models.png": "/ui/",
        "model.png": "/ui/models/rubber",
        "version.png": f"/ui/models/{REAL_FIT_MODEL}/versions/1",
        "version-compare.png": "/ui/models/rubber/versions/4?compare=3",
        "version-covariates.png": f"/ui/models/{COVARIATE_MODEL}/versions/1",
    }
    for file, path in shots.items():
        page.get(f"{server.url}{path}")
        if "versions" in path:
            wait(page, lambda d: d.find_element(By.ID, "try-it-chart")
                 .get_attribute("data-state") == "drawn")
            for image in page.find_elements(By.CSS_SELECTOR, "#figures img"):
                page.execute_script("arguments[0].scrollIntoView()", image)  # lazy images
            wait(page, lambda d: all(d.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0", image)
                for image in d.find_elements(By.CSS_SELECTOR, "#figures img")))
            page.execute_script("window.scrollTo(0, 0)")
        height = page.execute_script("return document.documentElement.scrollHeight")
        page.set_window_size(1280, min(max(height + 200, 800), 4000))
        assert page.save_screenshot(str(SCREENSHOTS / file))
        page.set_window_size(1280, 1600)
    print(f"screenshots in {SCREENSHOTS}")
    assert sorted(p.name for p in SCREENSHOTS.iterdir()) == sorted(shots)


def test_a_model_without_metrics_or_figures_renders_cleanly(page: Any,
                                                            server: ServerProcess) -> None:
    page.get(f"{server.url}/ui/models/gent")
    wait(page, lambda d: d.execute_script(
        "return Object.keys(window.surrogateUi.plots).length") == 3)
    row = page.find_element(By.CSS_SELECTOR, '#versions tr[data-version="1"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-col="nlpd"]').text == "—"
    assert page.find_elements(By.ID, "compare-form") == []  # one version: nothing to compare
    page.get(f"{server.url}/ui/models/gent/versions/1")
    wait(page, lambda d: d.find_element(By.ID, "try-it-chart").get_attribute("data-state")
         == "drawn")
    assert "No report figures" in page.find_element(By.TAG_NAME, "main").text


def test_a_real_fit_shows_its_metrics_figures_and_prediction(page: Any,
                                                             server: ServerProcess) -> None:
    detail = api(server, f"/v1/models/{REAL_FIT_MODEL}/versions/1")
    page.get(f"{server.url}/ui/models/{REAL_FIT_MODEL}")
    row = page.find_element(By.CSS_SELECTOR, '#versions tr[data-version="1"]')
    held = detail["metrics"]["held_out"]
    assert row.find_element(By.CSS_SELECTOR, '[data-col="nlpd"]').text == f"{held['nlpd']:.3f}"
    coverage = held["spread"]["coverage"]["0.95"]  # two folds of 8 materials
    assert row.find_element(By.CSS_SELECTOR, '[data-col="coverage_95_interval"]').text == (
        f"{coverage['low_95']:.3f}–{coverage['high_95']:.3f}")
    assert row.find_element(By.CSS_SELECTOR, '[data-col="held_out_units"]').text == (
        "8 materials")
    assert row.find_element(By.CSS_SELECTOR, '[data-col="aleatoric_sd_error"]').text == (
        pct(detail["metrics"]["aleatoric_sd_error"]))
    page.get(f"{server.url}/ui/models/{REAL_FIT_MODEL}/versions/1")
    images = page.find_elements(By.CSS_SELECTOR, "#figures img")
    stored = sorted(f["path"] for f in detail["files"])
    assert "report/fit.png" in stored and "report/curves.png" in stored
    assert sorted(i.get_attribute("alt") for i in images) == stored
    for image in images:
        page.execute_script("arguments[0].scrollIntoView()", image)
        wait(page, lambda d, image=image: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image) > 0)
    wait(page, lambda d: d.find_element(By.ID, "try-it-chart").get_attribute("data-state")
         == "drawn")
    state = page.execute_script("return window.surrogateUi.tryIt")
    assert state["response"] == httpx.post(f"{server.url}{state['url']}", json=state["request"],
                                           timeout=10).json()
    assert page.find_element(By.CSS_SELECTOR, '[data-field="data_sha256"]').text == (
        detail["data_sha256"])


def test_a_covariate_version_shows_its_covariates_and_tries_them(page: Any,
                                                                 server: ServerProcess) -> None:
    detail = api(server, f"/v1/models/{COVARIATE_MODEL}/versions/1")
    covariates = detail["manifest"]["covariates"]
    page.get(f"{server.url}/ui/models/{COVARIATE_MODEL}/versions/1")
    rows = page.find_elements(By.CSS_SELECTOR, "#covariates tbody tr")
    assert [r.get_attribute("data-covariate") for r in rows] == [c["name"] for c in covariates]
    for row, covariate in zip(rows, covariates, strict=True):
        cell = {c.get_attribute("data-col"): c.text
                for c in row.find_elements(By.CSS_SELECTOR, "td[data-col]")}
        assert cell["unit"] == covariate["unit"]
        assert cell["range"] == f"{covariate['min']:.6g} … {covariate['max']:.6g}"
    tested = page.find_elements(By.CSS_SELECTOR, "#tested-conditions tbody tr")
    assert len(tested) == len(detail["manifest"]["tested_conditions"])
    # The report's covariate figures are shown and decoded.
    alts = [i.get_attribute("alt") for i in page.find_elements(By.CSS_SELECTOR, "#figures img")]
    assert "report/covariate_temperature.png" in alts

    chart = page.find_element(By.ID, "try-it-chart")
    wait(page, lambda d: chart.get_attribute("data-state") == "drawn")
    state = page.execute_script("return window.surrogateUi.tryIt")
    assert state["request"]["covariates"] == {"temperature": 296.15, "rate": 0.01}
    answer = httpx.post(f"{server.url}{state['url']}", json=state["request"],
                        timeout=10).json()
    assert state["response"] == answer and answer["condition_distance"][0] == 0.0
    status = page.find_element(By.ID, "try-it-status").text
    assert "temperature=296.15 K, rate=0.01 1/s" in status and "condition distance 0" in status

    # A temperature between the tested ones: the request and the chart follow the inputs.
    field = page.find_element(By.CSS_SELECTOR, 'input[data-covariate="temperature"]')
    field.clear()
    field.send_keys("310")
    page.find_element(By.ID, "try-it-run").click()
    wait(page, lambda d: d.execute_script(
        "return window.surrogateUi.tryIt.request.covariates.temperature") == 310)
    wait(page, lambda d: chart.get_attribute("data-state") == "drawn")
    state = page.execute_script("return window.surrogateUi.tryIt")
    answer = httpx.post(f"{server.url}{state['url']}", json=state["request"],
                        timeout=10).json()
    assert state["response"] == answer and answer["condition_distance"][0] > 0
    data = page.execute_script("return window.surrogateUi.plots.tryIt.data")
    assert_close(data[-1], answer["mean"])
    # Every covariate input is required: an empty one keeps the form from being sent.
    field.clear()
    assert page.execute_script("return arguments[0].validity.valueMissing", field) is True
    assert page.execute_script(
        "return document.getElementById('try-it-form').checkValidity()") is False
