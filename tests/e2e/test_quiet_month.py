"""A month with no data change writes only real transitions, each once.

The sandbox org stays as it is; only the clock moves, one day at a time. Each day is a real
cycle: the Salesforce sync, the evaluation as of that day, the writeback over HTTPS to the
sandbox. Values that drift with the clock ("open for 186 days", a score creeping by 0.1, an
Eligible contact's next-available "today") would rewrite records on days when nothing happened.
What may change is what a boundary changes: an ask leaving a cap's window or the 90-day count,
a rest period ending, a P1 case passing 7 days, an NPS answer passing 12 months, a customer
passing its first 90 days or a whole year. Every write must fall on such a day of its record.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from rules import Policy, load_policy
from sandbox import Sandbox
from sync_service.evaluate.evaluation import evaluate_all
from sync_service.ops.runs import run_record
from sync_service.pipeline import sync_job, writeback_job
from sync_service.store.models import (
    accounts,
    advocacy_asks,
    contacts,
    nps_responses,
    tickets,
    writeback_log,
)
from tests.e2e.test_writeback import (  # the CA fixture is used by name
    REPO,
    context,
    process_ca,  # noqa: F401
    service_env,
)

#: The sandbox's seed time and the first simulated day (data is seeded relative to it).
START = datetime(2026, 12, 1, tzinfo=UTC)
DAYS = 31
#: Days after an ask at which the shipped policy's counts change: the rest period (14), the
#: reference-call cap (30), the declines window (60), the quarter caps and the asks count (90).
ASK_BOUNDARIES = (14, 30, 60, 90)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(accounts=30, seed=5, now=START) as sandbox:
        yield sandbox


def _day(value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def boundaries(engine: sa.Engine) -> dict[str, set[date]]:
    """Per record id (contact or account), the days on which a time-based input crosses a limit.

    Computed from the raw rows, not from the evaluation: a contact's own asks (rest, caps,
    declines, the 90-day count), its account's asks (the account cap), its NPS answers (12
    months), its account's open cases (a P1 past 7 days) and start date (90 days, whole years).
    An account's days are those of all its contacts.
    """
    per_account: defaultdict[str, set[date]] = defaultdict(set)
    per_contact: defaultdict[str, set[date]] = defaultdict(set)
    with engine.connect() as conn:
        for acc, since in conn.execute(sa.select(accounts.c.id, accounts.c.customer_since)):
            d = _day(since)
            if d:
                per_account[acc] |= {d + timedelta(days=90)}
                per_account[acc] |= {d.replace(year=d.year + k) for k in (1, 2, 3)}
        for acc, opened, closed in conn.execute(
            sa.select(tickets.c.account_id, tickets.c.opened_at, tickets.c.is_closed)
        ):
            d = _day(opened)
            if d and not closed:
                per_account[acc].add(d + timedelta(days=8))
        asks = list(
            conn.execute(
                sa.select(
                    advocacy_asks.c.contact_id,
                    advocacy_asks.c.account_id,
                    advocacy_asks.c.requested_date,
                )
            )
        )
        contact_account = dict(conn.execute(sa.select(contacts.c.id, contacts.c.account_id)).all())
        for cid, acc, requested in asks:
            d = _day(requested)
            if d is None:
                continue
            acc = acc or contact_account.get(cid)
            per_contact[cid] |= {d + timedelta(days=n) for n in ASK_BOUNDARIES}
            per_account[acc].add(d + timedelta(days=90))
        for cid, responded in conn.execute(
            sa.select(nps_responses.c.contact_id, nps_responses.c.responded_at)
        ):
            d = _day(responded)
            if d:
                per_contact[cid].add(d + timedelta(days=366))
    out: dict[str, set[date]] = {}
    for cid, acc in contact_account.items():
        out[cid] = per_contact[cid] | per_account[acc]
        out.setdefault(acc, set()).update(out[cid] | per_account[acc])
    return out


def quiet_month(
    sb: Sandbox, db_url: str, tmp_path: Path, policy: Policy
) -> tuple[dict[date, list[tuple[str, str, object]]], dict[str, set[date]]]:
    """Run the month; the writes of each day after the first, and the records' boundaries."""
    ctx = context(service_env(sb, db_url, tmp_path))
    writes: dict[date, list[tuple[str, str, object]]] = {}
    seen = 0
    for n in range(DAYS):
        now = START + timedelta(days=n, hours=6, minutes=7 * n)  # a cycle at a slightly later time
        assert sync_job(ctx, "salesforce").status == "success"
        with run_record(ctx.engine, "evaluate") as run:
            evaluate_all(ctx.engine, policy, now, run)
        assert writeback_job(ctx).status == "success"
        with ctx.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    writeback_log.c.id,
                    writeback_log.c.record_id,
                    writeback_log.c.field,
                    writeback_log.c.new_value,
                )
                .where(writeback_log.c.id > seen)
                .order_by(writeback_log.c.id)
            ).all()
        seen = max([seen, *(r[0] for r in rows)])
        if n:  # the first day writes everything: the service's first verdicts
            writes[now.date()] = [(r[1], r[2], r[3]) for r in rows]
    found = boundaries(ctx.engine)
    ctx.engine.dispose()
    return writes, found


def off_boundary(
    writes: dict[date, list[tuple[str, str, object]]], found: dict[str, set[date]]
) -> list[tuple[date, str, str, object]]:
    """Writes on a day when none of the record's time-based inputs crossed a limit."""
    return [
        (day, rid, field, value)
        for day, rows in writes.items()
        for rid, field, value in rows
        if day not in found.get(rid, set())
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_a_month_without_data_change_writes_only_real_transitions_each_once(
    sb: Sandbox, db_url: str, tmp_path: Path
) -> None:
    writes, found = quiet_month(sb, db_url, tmp_path, load_policy(REPO / "config" / "rules.yaml"))
    drift = off_boundary(writes, found)
    by_field = Counter(field for _d, _r, field, _v in drift)
    assert drift == [], f"{len(drift)} writes on no boundary of their record: {dict(by_field)}"
    every = [(rid, field) for rows in writes.values() for rid, field, _v in rows]
    # Real transitions happen (a cap window lets an ask go, a rest period ends) ...
    assert len(every) > 0
    # ... and each is written once: a field changes once per boundary, never back and forth.
    per_day = Counter((day, rid, field) for day, rows in writes.items() for rid, field, _ in rows)
    assert max(per_day.values()) == 1
    values = Counter((rid, field, str(v)) for rows in writes.values() for rid, field, v in rows)
    assert max(values.values()) == 1
    # A quiet month touches few records: far fewer than one write per record and day.
    records = {rid for rid, _f in every}
    assert len(every) < len(found) * DAYS / 10, (len(every), len(records), len(found))


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_the_quiet_month_check_sees_a_value_that_drifts(
    sb: Sandbox, db_url: str, tmp_path: Path
) -> None:
    # The same month with a score that follows the days one by one (FLOOR of a day count in
    # days passes validation): clock noise reaches the CRM and the check above must see it.
    text = (REPO / "config" / "rules.yaml").read_text(encoding="utf-8")
    creeping = text.replace(
        "value: FLOOR(tenure_days / 365)\n      min: 0\n      max: 3",
        ("value: FLOOR(tenure_days / 1)\n      min: 0\n      max: 60"),
    )
    assert creeping != text
    path = tmp_path / "creeping.yaml"
    path.write_text(creeping, encoding="utf-8")
    writes, found = quiet_month(sb, db_url, tmp_path, load_policy(path))
    drift = off_boundary(writes, found)
    assert drift
    assert {field for _d, _r, field, _v in drift} == {"Advocate_Score__c"}
