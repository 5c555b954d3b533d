"""The report in a real headless Chromium: no console error, no network, every chart shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.engine import Engine

from sync_service.report import ReportOptions, build_report
from sync_service.report.charts import Chart, draw
from sync_service.report.page import render_html
from sync_service.report.tables import Report
from sync_service.report.web import ReportSource, build_router, same_token
from sync_service.settings import CoverageTarget
from tests.report.browser import (
    chromium,
    console_errors,
    full_page_screenshot,
    requested_urls,
    resource_entries,
)
from tests.report.random_store import NOW, make_store
from tests.report.serving import serving

TOKEN = "viewer-token-for-the-browser"
OPTIONS = ReportOptions(
    targets={"segment": CoverageTarget(at_least=40)}, crm_url="https://acme.my.salesforce.com"
)


@pytest.fixture
def built(engine: Engine) -> tuple[Report, dict[str, list[Chart]]]:
    make_store(engine, 4, contacts=300)
    report = build_report(engine, OPTIONS, NOW)
    return report, draw(report)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def _assert_every_chart_visible(driver: WebDriver, charts: dict[str, list[Chart]]) -> None:
    expected = {f"chart-{c.key}" for group in charts.values() for c in group}
    assert {"chart-influence", "chart-influence-win-rate"} <= expected
    shown = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert {el.get_attribute("id") for el in shown} == expected
    for el in shown:
        driver.execute_script("arguments[0].scrollIntoView()", el)
        assert el.is_displayed(), el.get_attribute("id")
        assert el.size["width"] > 300, el.get_attribute("id")
        assert el.size["height"] > 100, el.get_attribute("id")
    headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "section > h2")]
    assert len(headings) == 7


def test_the_report_file_reads_offline_in_chromium(
    built: tuple[Report, dict[str, list[Chart]]], browser: WebDriver, tmp_path: Path
) -> None:
    report, charts = built
    page = tmp_path / "report.html"
    page.write_text(render_html(report, charts=charts), encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.title == "Advocate program report"
    _assert_every_chart_visible(browser, charts)
    assert console_errors(browser) == []
    assert resource_entries(browser) == []
    assert set(requested_urls(browser)) <= {page.as_uri()}
    shot = full_page_screenshot(browser, tmp_path / "report.png")
    assert shot.stat().st_size > 50_000


def test_the_live_report_after_a_browser_sign_in(
    engine: Engine,
    built: tuple[Report, dict[str, list[Chart]]],
    browser: WebDriver,
    tmp_path: Path,
) -> None:
    _, charts = built
    app = FastAPI()
    app.include_router(
        build_router(ReportSource(engine, lambda: OPTIONS, lambda: NOW), same_token(TOKEN))
    )
    with serving(app) as base:
        browser.get(f"{base}/report")
        assert "API token" in browser.page_source  # 401 before signing in
        browser.get(f"{base}/report/login")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 60).until(lambda d: d.current_url == f"{base}/report")
        # forget what the 401 and the sign-in left in the logs; then read the page afresh
        console_errors(browser)
        requested_urls(browser)
        browser.refresh()
        _assert_every_chart_visible(browser, charts)
        assert console_errors(browser) == []
        assert resource_entries(browser) == []
        assert requested_urls(browser) == [f"{base}/report"]
        full_page_screenshot(browser, tmp_path / "live-report.png")
