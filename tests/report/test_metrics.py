"""The advocate figures on /metrics equal the report's and the store's."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from sync_service.ops.metrics import build_registry, render
from sync_service.report import ReportOptions, build_report
from sync_service.report.metrics import AdvocateCollector
from sync_service.store.models import evaluations
from tests.report.random_store import NOW, make_store


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_carry_the_pool_the_violations_and_the_under_used(engine: Engine) -> None:
    make_store(engine, 17, contacts=200)
    collector = AdvocateCollector(engine, lambda: NOW, window_days=90)
    samples = _samples(render(build_registry(engine, collector)).decode())
    report = build_report(engine, ReportOptions(window_days=90), NOW)

    with engine.connect() as conn:
        pool = Counter(
            dict(
                conn.execute(
                    sa.select(evaluations.c.status, sa.func.count())
                    .where(evaluations.c.entity_type == "contact")
                    .group_by(evaluations.c.status)
                ).all()
            )
        )
    for status, n in pool.items():
        assert samples[("advocate_pool_contacts", (("status", status),))] == n

    violations = {
        (("ask_type", k), ("status", s), ("team", t)): n
        for t, k, s, n in report.table("violations").rows  # type: ignore[union-attr]
    }
    got = {labels: v for (name, labels), v in samples.items() if name == "advocate_violations"}
    assert got == violations
    figures: dict[str, Any] = {f.key: f.value for f in report.section("utilisation").figures}
    assert samples[("advocate_under_used_contacts", ())] == figures["under_used"]
    asks = sum(v for (name, _), v in samples.items() if name == "advocate_asks_window")
    assert asks == figures["asks"]
    assert samples[("advocate_report_window_days", ())] == 90


def test_a_scrape_within_the_max_age_asks_the_store_nothing(engine: Engine) -> None:
    make_store(engine, 3, contacts=40)
    collector = AdvocateCollector(engine, lambda: NOW, max_age_seconds=3600)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    first = list(collector.collect())
    queried = len(statements)
    assert queried > 0
    second = list(collector.collect())
    assert len(statements) == queried
    assert [m.name for m in first] == [m.name for m in second]


def test_an_unreachable_store_gives_no_advocate_figures_and_no_error() -> None:
    engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    collector = AdvocateCollector(engine, lambda: NOW)
    assert list(collector.collect()) == []
