"""Every figure of the report against a direct reading of a randomised store."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.report import ReportOptions, build_report
from sync_service.report.coverage import GroupField
from sync_service.report.tables import Report
from sync_service.settings import CoverageTarget
from sync_service.store.models import (
    accounts,
    advocacy_asks,
    contacts,
    evaluation_history,
    evaluations,
    opportunities,
)
from tests.report.random_store import NOW, all_rows, make_store

WINDOW = 90
WEEKS = 60


@pytest.fixture(params=[11, 23])
def store(request: pytest.FixtureRequest, engine: Engine) -> tuple[Engine, Report]:
    make_store(engine, request.param)
    options = ReportOptions(
        window_days=WINDOW,
        history_weeks=WEEKS,
        top=15,
        by=(GroupField("employees", Entity.ACCOUNT, extra=True),),
        targets={"segment": CoverageTarget(at_least=30, values={"Public Sector": 2})},
    )
    return engine, build_report(engine, options, NOW)


def _history(engine: Engine) -> dict[str, list[tuple[datetime, int, str]]]:
    out: dict[str, list[tuple[datetime, int, str]]] = defaultdict(list)
    for h in all_rows(engine, evaluation_history):
        if h["entity_type"] == "contact":
            out[h["entity_id"]].append((h["changed_at"], h["id"], h["new_status"]))
    for rows in out.values():
        rows.sort()
    return out


def _status_at(history: list[tuple[datetime, int, str]], moment: datetime, *, strict: bool) -> Any:
    status = None
    for t, _, s in history:
        if t < moment or (not strict and t == moment):
            status = s
    return status


def _live(engine: Engine) -> dict[str, dict[str, Any]]:
    return {
        e["entity_id"]: e for e in all_rows(engine, evaluations) if e["entity_type"] == "contact"
    }


def _asks_in_window(engine: Engine) -> list[dict[str, Any]]:
    first = NOW.date() - timedelta(days=WINDOW - 1)
    return [
        a
        for a in all_rows(engine, advocacy_asks)
        if not a["deleted"] and a["contact_id"] and first <= a["requested_date"] <= NOW.date()
    ]


def test_pool_per_week_equals_each_contacts_status_at_the_week_end(store: Any) -> None:
    engine, report = store
    history = _history(engine)
    live = _live(engine)
    table = report.table("pool")
    statuses = [c.key for c in table.columns[1:]]
    assert len(table.rows) == WEEKS
    for n, row in enumerate(table.rows):
        week_end: date = row[0]
        moment = NOW - timedelta(weeks=WEEKS - n - 1)
        assert moment.date() == week_end
        # a change exactly at a week's end counts in the next week; the last week ends now
        last = n == WEEKS - 1
        expected = Counter(
            _status_at(history[cid], moment, strict=not last) for cid in live if cid in history
        )
        got = dict(zip(statuses, row[1:], strict=True))
        assert {s: n for s, n in got.items() if n} == {
            s: n for s, n in expected.items() if s is not None
        }


def test_last_week_of_the_pool_equals_the_current_verdicts(store: Any) -> None:
    engine, report = store
    current = Counter(e["status"] for e in _live(engine).values())
    table = report.table("pool")
    last = dict(zip([c.key for c in table.columns[1:]], table.rows[-1][1:], strict=True))
    assert {s: n for s, n in last.items() if n} == dict(current)
    assert report.section("pool").figures[0].value == sum(current.values())


def test_asks_per_advocate_distribution_counts_every_evaluated_contact(store: Any) -> None:
    engine, report = store
    live = _live(engine)
    per = Counter(a["contact_id"] for a in _asks_in_window(engine) if a["contact_id"] in live)
    expected = Counter(per.values())
    expected[0] = len(live) - len(per)
    got = dict(report.table("utilisation").rows)
    assert got == dict(expected)
    assert sum(got.values()) == len(live)


def test_violations_are_asks_made_while_fatigued_suspended_or_opted_out(store: Any) -> None:
    engine, report = store
    history = _history(engine)
    expected: Counter[tuple[str, str, str]] = Counter()
    for a in _asks_in_window(engine):
        day = datetime.combine(a["requested_date"], datetime.min.time(), tzinfo=NOW.tzinfo)
        status = _status_at(history.get(a["contact_id"], []), day, strict=True)
        if status in ("Fatigued", "Suspended", "Opted Out"):
            expected[(a["team"] or "(not set)", a["ask_type"], status)] += 1
    got = {(t, k, s): n for t, k, s, n in report.table("violations").rows}
    assert got == dict(expected)
    assert sum(got.values()) > 0
    figures = {f.key: f.value for f in report.section("utilisation").figures}
    assert figures["violations"] == sum(expected.values())
    assert figures["asks"] == len(_asks_in_window(engine))


def test_under_used_are_eligible_contacts_not_asked_in_the_window(store: Any) -> None:
    engine, report = store
    asked = {a["contact_id"] for a in _asks_in_window(engine)}
    eligible = {cid: e for cid, e in _live(engine).items() if e["status"] == "Eligible"}
    expected = {cid for cid in eligible if cid not in asked}
    section = report.section("utilisation")
    assert {f.key: f.value for f in section.figures}["under_used"] == len(expected)
    listed = report.table("under-used").rows
    assert {r[0] for r in listed} <= expected
    best = sorted(expected, key=lambda cid: (-eligible[cid]["score"], cid))[: len(listed)]
    assert [r[0] for r in listed] == best


def test_eligible_per_segment_region_industry_equal_the_stores(store: Any) -> None:
    engine, report = store
    rows = {(r[0], r[1]): r for r in report.table("coverage").rows}
    e, c, a = evaluations, contacts, accounts
    with engine.connect() as conn:
        for field in ("segment", "region", "industry"):
            direct = conn.execute(
                sa.select(a.c[field], sa.func.count())
                .select_from(
                    e.join(
                        c, sa.and_(c.c.id == e.c.entity_id, c.c.source == "salesforce")
                    ).outerjoin(a, a.c.id == c.c.account_id)
                )
                .where(e.c.entity_type == "contact", e.c.status == "Eligible")
                .group_by(a.c[field])
            ).all()
            for value, n in direct:
                assert rows[(field, value or "(not set)")][2] == n
            reported = sum(r[2] for (f, _), r in rows.items() if f == field)
            assert reported == sum(n for _, n in direct)


def test_coverage_by_a_mapped_extra_field(store: Any) -> None:
    engine, report = store
    live = _live(engine)
    by_account = {a["id"]: a["extra"]["employees"] for a in all_rows(engine, accounts)}
    expected: Counter[str] = Counter()
    for c in all_rows(engine, contacts):
        if c["id"] in live and live[c["id"]]["status"] == "Eligible":
            expected[str(by_account[c["account_id"]])] += 1
    got = {r[1]: r[2] for r in report.table("coverage").rows if r[0] == "employees" and r[2]}
    assert got == dict(expected)


def test_coverage_puts_gaps_first_and_lists_targeted_values_with_no_contact(store: Any) -> None:
    _, report = store
    segment = [r for r in report.table("coverage").rows if r[0] == "segment"]
    gaps = [r[5] for r in segment]
    assert gaps == sorted(gaps, reverse=True)
    public = next(r for r in segment if r[1] == "Public Sector")
    assert public[2:] == (0, 0, 2, 2)
    for row in segment:
        assert row[5] == max(0, row[4] - row[2])


def test_demand_per_month_team_type_and_outcome(store: Any) -> None:
    engine, report = store
    first = (NOW - timedelta(weeks=WEEKS)).date().replace(day=1)
    expected: Counter[tuple[str, str, str, str]] = Counter()
    for a in all_rows(engine, advocacy_asks):
        if a["deleted"] or not a["contact_id"] or not first <= a["requested_date"] <= NOW.date():
            continue
        month = a["requested_date"].strftime("%Y-%m")
        expected[(month, a["team"] or "(not set)", a["ask_type"], a["status"].lower())] += 1
    got = {r[:4]: r[4] for r in report.table("demand").rows}
    assert got == dict(expected)
    summary = {(r[0], r[1]): r for r in report.table("demand-summary").rows}
    window = _asks_in_window(engine)
    for team in {a["team"] or "(not set)" for a in window}:
        mine = [a for a in window if (a["team"] or "(not set)") == team]
        row = summary[("Team", team)]
        assert row[2] == len(mine)
        assert row[3] == sum(a["status"] == "Declined" for a in mine)
        assert row[4] == sum(a["status"] == "Completed" for a in mine)


def test_retention_of_the_contacts_eligible_window_days_ago(store: Any) -> None:
    engine, report = store
    history = _history(engine)
    live = _live(engine)
    then = NOW - timedelta(days=WINDOW)
    cohort = [cid for cid, h in history.items() if _status_at(h, then, strict=False) == "Eligible"]
    expected = Counter(
        live[cid]["status"] if cid in live else "Gone from the CRM" for cid in cohort
    )
    got = {r[0]: r[1] for r in report.table("retention").rows}
    assert got == dict(expected)
    figures = {f.key: f.value for f in report.section("retention").figures}
    assert figures["eligible_then"] == len(cohort)
    assert figures["still_eligible"] == expected["Eligible"]


def test_most_asked_are_the_top_contacts_of_the_window(store: Any) -> None:
    engine, report = store
    per = Counter(a["contact_id"] for a in _asks_in_window(engine))
    expected = sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
    rows = report.table("most-asked").rows
    assert [(r[0], r[3]) for r in rows] == expected
    live = _live(engine)
    for r in rows:
        verdict = live.get(r[0])
        assert r[4] == (verdict["status"] if verdict else None)
        assert r[6] == (verdict["next_available"] if verdict else None)


def test_sections_read_in_parallel_equal_those_read_one_by_one(engine: Engine) -> None:
    make_store(engine, 37)
    options = ReportOptions(window_days=WINDOW, history_weeks=WEEKS, top=15)
    serial = build_report(engine, options, NOW, workers=1)
    parallel = build_report(engine, options, NOW, workers=4)
    assert parallel == serial
    assert [s.key for s in parallel.sections] == [s.key for s in serial.sections]


def _quarter(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def test_influence_per_quarter_equals_the_deals_and_their_linked_asks(store: Any) -> None:
    engine, report = store
    linked = {
        a["opportunity_id"]
        for a in all_rows(engine, advocacy_asks)
        if a["opportunity_id"] and not a["deleted"]
    }
    # the quarters: from the one WEEKS weeks ago to the fourth after today's, none skipped
    first = _quarter((NOW - timedelta(weeks=WEEKS)).date())
    ahead = date(NOW.year + (NOW.month - 1 + 12) // 12, (NOW.month - 1 + 12) % 12 + 1, 1)
    expected_quarters = []
    day = date(int(first[:4]), 3 * (int(first[-1]) - 1) + 1, 1)
    while day <= ahead:
        if _quarter(day) not in expected_quarters:
            expected_quarters.append(_quarter(day))
        day += timedelta(days=28)
    table = report.table("influence")
    assert table is not None
    assert table.column("quarter") == expected_quarters
    want: dict[str, list[float]] = {q: [0.0] * 7 for q in expected_quarters}
    for o in all_rows(engine, opportunities):
        if o["source"] != "salesforce" or o["deleted"] or o["close_date"] is None:
            continue
        q = _quarter(o["close_date"])
        if q not in want:
            continue
        w = want[q]
        ref = o["id"] in linked
        if ref:
            w[2] += 1
            if not o["is_closed"]:
                w[0] += o["amount"] or 0
            elif o["is_won"]:
                w[1] += o["amount"] or 0
        if o["is_closed"]:
            w[3 if ref else 5] += 1
            w[4 if ref else 6] += 1 if o["is_won"] else 0
    got = {r["quarter"]: r for r in table.records()}
    for q, (open_amt, won_amt, n, closed_with, won_with, closed_wo, won_wo) in want.items():
        r = got[q]
        assert r["influenced_open"] == pytest.approx(open_amt), q
        assert r["influenced_won"] == pytest.approx(won_amt), q
        assert (r["influenced_deals"], r["closed_with"], r["won_with"]) == (
            n,
            closed_with,
            won_with,
        )
        assert (r["closed_without"], r["won_without"]) == (closed_wo, won_wo), q
        assert r["win_rate_with"] == (won_with / closed_with if closed_with else None)
        assert r["win_rate_without"] == (won_wo / closed_wo if closed_wo else None)
    figures = {f.key: f.value for f in report.section("influence").figures}
    totals = [sum(w[i] for w in want.values()) for i in range(7)]
    assert figures["influenced_open"] == pytest.approx(totals[0])
    assert figures["influenced_won"] == pytest.approx(totals[1])
    assert figures["win_rate_with"] == pytest.approx(totals[4] / totals[3])
    assert figures["win_rate_without"] == pytest.approx(totals[6] / totals[5])
    # the randomised store exercises every branch: links, wins and losses on both sides
    assert totals[0] > 0
    assert totals[1] > 0
    assert 0 < totals[4] < totals[3]
    assert 0 < totals[6] < totals[5]
