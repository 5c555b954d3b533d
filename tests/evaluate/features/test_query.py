"""A chunk's features read from the store: each family, links across systems, time windows."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from rules import parse_policy
from rules.asks import ASK_SCHEMA, ask_features
from sync_service.evaluate.features.chunks import compute_features
from sync_service.evaluate.features.query import FeatureQuery
from sync_service.store import frames
from tests.evaluate.features.helpers import (
    NOW,
    POLICY_TEXT,
    ROOT,
    TODAY,
    by_id,
    d,
    policy,
    seed_world,
    ts,
)
from tests.store_seed import seed


def test_features_per_contact_and_account(engine: Engine) -> None:
    seed_world(engine)
    p = policy()
    f = compute_features(engine, p, NOW)
    assert f.schema == pl.Schema(p.input_schema())
    rows = by_id(f)
    assert set(rows) == {"003A", "003B", "003C", "003D"}  # deleted rows ignored
    a = rows["003A"]
    assert (a["nps_latest"], a["nps_previous"], a["nps_trend"], a["nps_responses"]) == (10, 7, 3, 2)
    assert a["nps_latest_date"] == d(10)
    assert a["nps_age_days"] == 10
    assert (a["open_tickets"], a["open_tickets_p1"], a["open_escalations"]) == (2, 1, 1)
    assert a["oldest_open_escalation_date"] == date(2026, 11, 2)  # UTC date of the timestamp
    assert a["oldest_open_p1_days"] == 9
    assert a["oldest_open_p1_date"] == TODAY - timedelta(days=9)  # what a reason names
    assert a["tickets_last_30d"] == 2
    assert (a["has_open_renewal"], a["renewal_risk"], a["renewal_close_date"]) == (
        True,
        "At Risk",
        date(2027, 1, 31),
    )
    assert a["health_score"] == 91.5  # Gainsight's health wins
    assert a["payment_overdue"] is True  # Gainsight says overdue
    assert a["tenure_days"] == (TODAY - date(2024, 1, 1)).days
    assert a["industry"] == "Healthcare"
    assert a["partner_tier"] == "Gold"
    assert a["champion"] is True
    assert a["account_nps_latest"] == 3
    assert a["last_ask_date"] == d(29)
    assert a["days_since_last_ask"] == 29
    assert a["asks_last_30d"] == 1  # the ask exactly 30 days ago is out
    assert a["cap__reference_calls__count"] == 1
    assert a["cap__reference_calls__nth"] == d(29)
    assert a["cap__contact_quarter__count"] == 3
    assert a["cap__contact_quarter__nth"] == d(89)
    assert a["cap__account_quarter__count"] == 4  # a4 is exactly 90 days old
    assert a["account_asks_last_90d"] == 4
    b = rows["003B"]
    assert b["opted_out"] is True
    assert b["opted_in"] is False
    assert b["nps_latest"] == 3
    assert b["nps_trend"] is None
    assert b["cap__contact_quarter__count"] == 1
    c = rows["003C"]
    assert c["opted_out"] is True
    assert c["payment_overdue"] is None
    assert c["tenure_days"] == 30
    assert c["open_tickets"] == 1
    assert c["has_open_renewal"] is False
    assert c["nps_latest"] is None
    assert c["cap__account_quarter__count"] == 0
    orphan = rows["003D"]
    assert orphan["account_id"] is None
    assert orphan["open_tickets"] is None
    assert orphan["cap__account_quarter__count"] == 0
    assert orphan["opted_in"] is True


def test_sql_ask_counts_match_the_pure_twin(engine: Engine) -> None:
    rng = random.Random(7)
    seed(engine, Entity.ACCOUNT, [{"id": f"A{i}"} for i in range(5)])
    contacts = [{"id": f"C{i:02d}", "account_id": f"A{i % 5}"} for i in range(20)]
    seed(engine, Entity.CONTACT, contacts)
    asks = [
        {
            "id": f"k{i:03d}",
            "contact_id": f"C{rng.randrange(20):02d}",
            "ask_type": rng.choice(["Reference Call", "Review"]),
            "team": rng.choice(["Sales", "PR"]),
            "status": rng.choice(["Requested", "declined", "Completed", "Cancelled", None]),
            "requested_date": d(rng.randrange(-3, 120)),
        }
        for i in range(300)
    ]
    for a in asks:
        a["account_id"] = f"A{int(a['contact_id'][1:]) % 5}"
    seed(engine, Entity.ASK, asks)
    text = (ROOT / "config" / "rules.yaml").read_text()
    text = text.replace(
        "  declines_last_60d: integer\n",
        "  declines_last_60d: integer\n  completed_last_45d: integer\n  asks_pending: integer\n",
    ).replace(
        "      scope: contact\n      window_days: 90",
        "      scope: contact\n      statuses: [completed, Requested]\n      window_days: 90",
    )
    p = parse_policy(text, "rules.yaml")
    assert next(c for c in p.caps if c.id == "contact_quarter").statuses
    sql = compute_features(engine, p, NOW).sort("contact_id")
    base = pl.DataFrame(contacts).rename({"id": "contact_id"})
    pure = ask_features(p, base, pl.DataFrame(asks).select(list(ASK_SCHEMA)), NOW).sort(
        "contact_id"
    )
    cols = [c for c in sql.columns if c.startswith("cap__")] + ["last_ask_date"]
    cols += ["asks_last_90d", "declines_last_60d", "completed_last_45d", "asks_pending"]
    assert sql.select(cols).equals(pure.select(cols))
    assert sql["asks_pending"].sum() > 0
    assert sql["declines_last_60d"].sum() > 0


@pytest.mark.parametrize(("zone", "count"), [("UTC", 0), ("America/Los_Angeles", 1)])
def test_ask_windows_follow_the_policy_time_zone(engine: Engine, zone: str, count: int) -> None:
    # 03:00 UTC on the 23rd is the 22nd in Los Angeles: an ask dated 2026-10-24 is 30 days old
    # in UTC (outside the 30-day reference-call window) but 29 days old on Pacific time.
    now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    seed(engine, Entity.ACCOUNT, [{"id": "001A"}])
    seed(engine, Entity.CONTACT, [{"id": "003A", "account_id": "001A"}])
    seed(
        engine,
        Entity.ASK,
        [
            {
                "id": "k1",
                "contact_id": "003A",
                "account_id": "001A",
                "ask_type": "Reference Call",
                "requested_date": date(2026, 10, 24),
            },
        ],
    )
    p = parse_policy(POLICY_TEXT.replace("timezone: UTC", f"timezone: {zone}"), "rules.yaml")
    row = compute_features(engine, p, now).row(0, named=True)
    assert row["cap__reference_calls__count"] == count


def test_asks_and_answers_filed_under_another_account_are_counted_once(engine: Engine) -> None:
    # contact 003C moved from 001A to 001B: its old ask and answer still carry 001A
    seed(engine, Entity.ACCOUNT, [{"id": "001A"}, {"id": "001B"}, {"id": "001C"}])
    seed(
        engine,
        Entity.CONTACT,
        [
            {"id": "003A", "account_id": "001A"},
            {"id": "003C", "account_id": "001B"},
            {"id": "003D", "account_id": "001C"},
        ],
    )
    seed(
        engine,
        Entity.ASK,
        [
            {"id": "k1", "contact_id": "003C", "account_id": "001A", "requested_date": d(5)},
            {"id": "k2", "contact_id": "003C", "account_id": "001B", "requested_date": d(6)},
            {"id": "k3", "contact_id": "003D", "account_id": None, "requested_date": d(7)},
        ],
    )
    seed(
        engine,
        Entity.NPS_RESPONSE,
        [
            {
                "id": "n1",
                "contact_id": "003C",
                "account_id": "001A",
                "score": 9,
                "responded_at": ts(2),
            },
        ],
    )
    p = policy()
    for chunk_size in (1, 2, 100):
        rows = by_id(compute_features(engine, p, NOW, chunk_size=chunk_size))
        assert rows["003C"]["cap__contact_quarter__count"] == 2, chunk_size
        assert rows["003C"]["nps_latest"] == 9
        assert rows["003D"]["cap__contact_quarter__count"] == 1
        assert rows["003A"]["cap__contact_quarter__count"] == 0
        assert rows["003A"]["nps_latest"] is None
        # account caps count the asks filed on the account
        assert rows["003A"]["cap__account_quarter__count"] == 1
        assert rows["003C"]["cap__account_quarter__count"] == 1


def test_the_strays_fill_leaves_the_planner_settings_as_they_were(engine: Engine) -> None:
    # PostgreSQL: the fill turns hash joins off for its statement only; the reads after it,
    # on the same transaction, plan as usual
    seed(engine, Entity.ACCOUNT, [{"id": "001A"}, {"id": "001B"}])
    seed(engine, Entity.CONTACT, [{"id": "003C", "account_id": "001B"}])
    seed(engine, Entity.ASK, [{"id": "k1", "contact_id": "003C", "account_id": "001A"}])
    q = FeatureQuery(policy(), NOW, engine.dialect.name)
    with engine.connect() as conn:
        before = _hashjoin(conn)
        q.prepare(conn)
        assert _hashjoin(conn) == before
        moved = q._read_prepared(
            conn, q.tables.stray_asks, sa.select(q.tables.stray_asks.c.id), {"id": "string"}
        )
        assert moved["id"].to_list() == ["k1"]
        q.cleanup(conn)


def _hashjoin(conn: Any) -> str | None:
    if conn.dialect.name == "sqlite":
        return None
    return str(conn.exec_driver_sql("SELECT current_setting('enable_hashjoin')").scalar())


def test_the_latest_answer_is_the_latest_time_then_the_highest_id(engine: Engine) -> None:
    # answers are ranked in polars on the time read as text: fractions of a second of any
    # length and equal times must order as they would in SQL
    t = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    answers = [
        ("n1", "003A", 5, t),
        ("n2", "003A", 6, t),  # same time as n1: the higher id is the later one
        ("n3", "003B", 1, t),
        ("n4", "003B", 2, t + timedelta(microseconds=500_000)),
        ("n5", "003B", 3, t + timedelta(microseconds=123_456)),
        ("n6", "003C", 7, t + timedelta(microseconds=1)),
        ("n7", "003C", 8, t),
        ("n8", "003C", 9, t - timedelta(days=1, microseconds=1)),
    ]
    seed(engine, Entity.ACCOUNT, [{"id": "001A"}])
    seed(
        engine, Entity.CONTACT, [{"id": c, "account_id": "001A"} for c in ("003A", "003B", "003C")]
    )
    seed(
        engine,
        Entity.NPS_RESPONSE,
        [
            {"id": i, "contact_id": c, "account_id": "001A", "score": s, "responded_at": at}
            for i, c, s, at in answers
        ],
    )
    rows = by_id(compute_features(engine, policy(), NOW))
    got = {k: (r["nps_latest"], r["nps_previous"], r["nps_responses"]) for k, r in rows.items()}
    assert got == {"003A": (6, 5, 2), "003B": (2, 3, 3), "003C": (7, 8, 3)}
    assert rows["003C"]["nps_latest_date"] == date(2026, 11, 20)
    assert rows["003A"]["account_nps_latest"] == 2  # n4: the latest answer on the account


def test_text_values_and_ties_come_through_unchanged(engine: Engine) -> None:
    # values with the CSV separator, quotes, a line break, and '' (not NULL) survive the read
    tricky = "Acme, \"the\" O'Brien's \nsecond line"
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {"id": "001A", "industry": tricky, "extra": {"partner_tier": ""}},
            {"id": "001B", "industry": "", "extra": {"partner_tier": "a,b"}},
            {"id": "001C"},
        ],
    )
    seed(engine, Entity.CONTACT, [{"id": f"003{a}", "account_id": f"001{a}"} for a in "ABC"])
    close = date(2027, 1, 31)
    seed(
        engine,
        Entity.OPPORTUNITY,
        [  # two renewals closing the same day: the lowest id is "the" renewal
            {
                "id": "o2",
                "account_id": "001A",
                "opportunity_type": "Renewal",
                "is_closed": False,
                "close_date": close,
                "renewal_risk": "Low, for now",
            },
            {
                "id": "o1",
                "account_id": "001A",
                "opportunity_type": "renewal",
                "is_closed": None,
                "close_date": close,
                "renewal_risk": "High",
            },
            {
                "id": "o3",
                "account_id": "001B",
                "opportunity_type": "Renewal",
                "is_closed": True,
                "close_date": close,
                "renewal_risk": "High",
            },
        ],
    )
    rows = by_id(compute_features(engine, policy(), NOW))
    assert (rows["003A"]["industry"], rows["003A"]["partner_tier"]) == (tricky, "")
    assert (rows["003B"]["industry"], rows["003B"]["partner_tier"]) == ("", "a,b")
    assert (rows["003C"]["industry"], rows["003C"]["partner_tier"]) == (None, None)
    assert (rows["003A"]["has_open_renewal"], rows["003A"]["renewal_risk"]) == (True, "High")
    assert rows["003A"]["renewal_close_date"] == close
    assert (rows["003B"]["has_open_renewal"], rows["003B"]["renewal_risk"]) == (False, None)


@pytest.mark.parametrize("chunk_size", [1, 2, 100])
def test_gainsight_opt_flags_reach_their_contact_in_any_chunk(
    engine: Engine, chunk_size: int
) -> None:
    seed(engine, Entity.ACCOUNT, [{"id": f"001{a}"} for a in "ABC"])
    seed(
        engine,
        Entity.CONTACT,
        [
            {"id": "003A", "account_id": "001A", "opted_in": True},
            {"id": "003B", "account_id": "001B", "opted_in": None},
            {"id": "003C", "account_id": "001C", "opted_in": False},
            {"id": "003D", "account_id": None, "opted_in": None},
            {"source": "gainsight", "id": "G1", "sf_contact_id": "003A", "opted_out": True},
            {"source": "gainsight", "id": "G2", "sf_contact_id": "003B", "opted_in": True},
            {"source": "gainsight", "id": "G3", "sf_contact_id": "003D", "opted_in": True},
            {
                "source": "gainsight",
                "id": "G4",
                "sf_contact_id": "003C",
                "deleted": True,
                "opted_in": True,
            },
        ],
    )
    rows = by_id(compute_features(engine, policy(), NOW, chunk_size=chunk_size))
    got = {k: (r["opted_in"], r["opted_out"]) for k, r in rows.items()}
    assert got == {
        "003A": (True, True),
        "003B": (True, None),
        "003C": (False, None),
        "003D": (True, None),
    }


def test_values_holding_the_separators_are_read_again_as_csv(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = {"001A": "unit\x1fseparator", "001B": "record\x1eseparator", "001C": "plain"}
    seed(engine, Entity.ACCOUNT, [{"id": a, "industry": v} for a, v in odd.items()])
    seed(engine, Entity.CONTACT, [{"id": f"003{a[-1]}", "account_id": a} for a in odd])
    real = frames._read_text
    quoted: list[list[str]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        if kwargs["quoted"]:
            quoted.append(args[4])
        return real(*args, **kwargs)

    monkeypatch.setattr(frames, "_read_text", spy)
    for chunk_size in (1, 100):  # a range of one account each: only theirs go again
        quoted.clear()
        rows = by_id(compute_features(engine, policy(), NOW, chunk_size=chunk_size))
        assert {a: rows[f"003{a[-1]}"]["industry"] for a in odd} == odd
        assert all("industry" in names for names in quoted)
        assert len(quoted) == (2 if chunk_size == 1 else 1)
