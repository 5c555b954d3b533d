"""The ledger's speed path (SQL text on the driver's cursor) against its twin in SQLAlchemy Core."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.ledger import (
    asks_around,
    core_asks_around,
    core_find_contact,
    find_contact,
)
from sync_service.store.models import advocacy_asks, contacts, evaluations

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
TODAY = NOW.date()


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        rows = [
            ("salesforce", "003A", "001A", "a@x.io", False),
            ("salesforce", "003B", "001A", "b@x.io", False),
            ("salesforce", "003C", None, "c@x.io", False),
            ("salesforce", "003D", "001A", "d@x.io", True),
            ("gainsight", "003E", "001A", "e@x.io", False),
        ]
        conn.execute(
            sa.insert(contacts),
            [
                {
                    "source": s,
                    "id": i,
                    "account_id": a,
                    "email": e,
                    "deleted": d,
                    "synced_at": NOW,
                    # 003C consented to nothing: None as much as a value must read alike
                    "consent_types": None if i == "003C" else "Reference Call;Case Study",
                }
                for s, i, a, e, d in rows
            ],
        )
        conn.execute(
            sa.insert(evaluations),
            [
                {
                    "entity_type": "contact",
                    "entity_id": "003A",
                    "status": "Fatigued",
                    "eligible": False,
                    "reason": "3 asks in 90 days, cap 3",
                    "next_available": date(2026, 12, 20),
                    "score": 71.5,
                    "evaluated_at": NOW,
                }
            ],
        )
        asks = [
            ("salesforce", "a1", "003A", "001A", 10, False),
            ("api", "a2", "003A", "001A", 1, False),
            ("salesforce", "a3", "003B", "001A", 5, False),
            ("salesforce", "a4", "003A", "001A", 200, False),  # too old
            ("salesforce", "a5", "003A", "001A", 3, True),  # deleted
            ("salesforce", "a6", "003A", "001Q", 2, False),  # filed under another account
            ("salesforce", "a7", "003C", None, 4, False),
        ]
        conn.execute(
            sa.insert(advocacy_asks),
            [
                {
                    "source": s,
                    "id": i,
                    "contact_id": c,
                    "account_id": a,
                    "ask_type": "Webinar",
                    "team": "Events",
                    "status": "Requested",
                    "requested_date": TODAY - timedelta(days=d),
                    "deleted": gone,
                    "synced_at": NOW,
                }
                for s, i, c, a, d, gone in asks
            ],
        )


def test_the_speed_path_reads_what_the_core_twin_reads(engine: Engine) -> None:
    _seed(engine)
    since = TODAY - timedelta(days=91)
    with engine.connect() as conn:
        for key in ("003A", "003B", "003C", "003D", "003E", "A@X.IO", "b@x.io", "none@x.io"):
            assert find_contact(conn, key) == core_find_contact(conn, key), key
        for contact, account in (("003A", "001A"), ("003A", None), ("003C", None)):
            got = sorted(asks_around(conn, contact, account, since), key=lambda r: r.id)
            twin = sorted(core_asks_around(conn, contact, account, since), key=lambda r: r.id)
            assert got == twin
            assert got
        (a1,) = [r for r in asks_around(conn, "003A", "001A", since) if r.id == "a1"]
    assert a1.requested_date == TODAY - timedelta(days=10)
    assert a1.source == "salesforce"
    with engine.connect() as conn:
        found = find_contact(conn, "003A")
    assert found is not None
    assert found.next_available == date(2026, 12, 20)
    assert found.score == 71.5
    assert found.consent_types == "Reference Call;Case Study"


def test_the_switch_turns_the_speed_path_off_with_the_same_answers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(engine)
    since = TODAY - timedelta(days=91)
    with engine.connect() as conn:
        fast = (find_contact(conn, "a@x.io"), asks_around(conn, "003A", "001A", since))
        monkeypatch.setenv("SYNC_SPEED_PATHS_OFF", "guard_ledger")
        plain = (find_contact(conn, "a@x.io"), asks_around(conn, "003A", "001A", since))
    assert fast[0] == plain[0]
    assert sorted(fast[1], key=lambda r: r.id) == sorted(plain[1], key=lambda r: r.id)
