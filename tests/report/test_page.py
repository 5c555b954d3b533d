"""The HTML page: self-contained, escaped, every section charted, small."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from canonical.model import Entity
from sync_service.report import ReportOptions, build_report
from sync_service.report.charts import Chart, draw
from sync_service.report.page import render_html
from sync_service.report.tables import Report, Table
from sync_service.settings import CoverageTarget
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import evaluations
from tests.report.random_store import NOW, make_store
from tests.store_seed import seed

MAX_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    # Rendering does not depend on the backend: one SQLite store for the module's tests.
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('page') / 'store.db'}")
    upgrade(engine)
    make_store(engine, 3, contacts=400)
    # a hostile name at the top of the under-used list: the page must show it as text
    seed(engine, Entity.CONTACT, [{"id": "003EVIL", "first_name": "<script>alert(1)</script>"}])
    with engine.begin() as conn:
        conn.execute(
            evaluations.insert().values(
                entity_type="contact",
                entity_id="003EVIL",
                status="Eligible",
                eligible=True,
                score=100.0,
                evaluated_at=NOW,
            )
        )
    options = ReportOptions(
        targets={"segment": CoverageTarget(at_least=50)}, crm_url="https://acme.my.salesforce.com"
    )
    report = build_report(engine, options, NOW)
    engine.dispose()
    return report


@pytest.fixture(scope="module")
def charts(report: Report) -> dict[str, list[Chart]]:
    return draw(report)


@pytest.fixture(scope="module")
def html(report: Report, charts: dict[str, list[Chart]]) -> str:
    return render_html(report, charts=charts)


def test_the_page_fetches_nothing_and_runs_no_script(html: str) -> None:
    assert "<script" not in html.lower()
    assert "@import" not in html
    assert re.findall(r"url\((?!#)", html) == [], "only references inside the page"
    # every src= and every link outside the page points at the CRM, never at a CDN
    assert re.findall(r'\ssrc="', html) == []
    hrefs = set(re.findall(r'href="([^"#][^"]*)"', html)) - {"data:,"}
    assert hrefs
    assert all(h.startswith("https://acme.my.salesforce.com/lightning/r/Contact/") for h in hrefs)
    assert "default-src 'none'" in html


def test_store_values_are_escaped(html: str) -> None:
    assert "alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_every_section_has_a_chart_and_the_page_stays_small(
    report: Report, charts: dict[str, list[Chart]], html: str
) -> None:
    for section in report.sections:
        assert charts[section.key], f"no chart for {section.key}"
        for chart in charts[section.key]:
            assert chart.svg.startswith("<svg ")
            assert "<?xml" not in chart.svg
            assert "<!DOCTYPE" not in chart.svg
    assert len(html.encode()) < MAX_BYTES
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "element ids repeat across the inline SVGs"


def test_numbers_are_formatted_for_people(report: Report, html: str) -> None:
    total = report.section("pool").figures[0].value
    assert isinstance(total, int)
    assert f">{total:,}<" in html
    assert re.search(r">\d+\.\d%<", html), "shares are shown as percentages"


def test_the_live_page_links_each_table_to_its_csv(
    report: Report, charts: dict[str, list[Chart]]
) -> None:
    html = render_html(report, csv_base="/report/", charts=charts)
    for table in report.tables():
        assert f'href="/report/{table.key}.csv"' in html


def test_an_empty_store_gives_a_page_with_every_section(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    upgrade(engine)
    report = build_report(engine, ReportOptions(), NOW)
    engine.dispose()
    html = render_html(report)
    for section in report.sections:
        assert f'id="{section.key}"' in html
    assert report.section("retention").figures[2].value is None  # no cohort: no share
    assert ">-<" in html  # and it shows as a dash, not 0%


def test_a_long_table_is_cut_on_the_page_but_not_in_the_csv(report: Report) -> None:
    coverage = report.table("coverage")
    assert coverage is not None
    many = Table(coverage.key, coverage.title, coverage.columns, list(coverage.rows) * 100)
    section = report.section("coverage")
    original = section.tables
    section.tables = [many]
    try:
        html = render_html(report, charts={s.key: [] for s in report.sections})
    finally:
        section.tables = original
    assert html.count('<tr class="gap">') + html.count("<tr>") < len(many.rows)
    assert f"The first 500 of {len(many.rows):,} rows" in html
    assert many.to_csv().count("\n") == len(many.rows) + 1
