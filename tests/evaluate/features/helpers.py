"""The features tests' shared store: accounts, contacts, answers, tickets, renewals and asks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from canonical.model import Entity
from rules import parse_policy
from tests.store_seed import seed

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = NOW.date()

POLICY_TEXT = (ROOT / "config" / "rules.yaml").read_text()
EXTRA_FEATURES = """\
features:
  open_tickets: integer
  open_tickets_p1: integer
  tickets_last_30d: integer
  asks_last_30d: integer
  account_asks_last_90d: integer
  days_since_last_ask: integer
  nps_previous: integer
  nps_responses: integer
  account_nps_latest: integer
  has_open_renewal: boolean
  churn_risk: boolean
  industry: string
  partner_tier: {type: string, extra: partner_tier, entity: account}
  champion: {type: boolean, extra: champion}
"""


def policy() -> Any:
    return parse_policy(POLICY_TEXT.replace("features:\n", EXTRA_FEATURES, 1), "rules.yaml")


def d(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


def ts(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


def seed_world(engine: Engine) -> None:
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {
                "id": "001A",
                "customer_since": date(2024, 1, 1),
                "health_score": 50.0,
                "payment_overdue": False,
                "industry": "Healthcare",
                "extra": {"partner_tier": "Gold"},
            },
            {"id": "001B", "customer_since": d(30), "payment_overdue": None},
            {"id": "001D", "customer_since": d(400), "deleted": True},
            {
                "source": "gainsight",
                "id": "GA",
                "sf_account_id": "001A",
                "health_score": 91.5,
                "payment_overdue": True,
            },
        ],
    )
    seed(
        engine,
        Entity.CONTACT,
        [
            {"id": "003A", "account_id": "001A", "opted_in": True, "extra": {"champion": True}},
            {"id": "003B", "account_id": "001A", "opted_in": False},
            {"id": "003C", "account_id": "001B", "opted_in": True, "opted_out": True},
            {"id": "003D", "account_id": None, "opted_in": True},
            {"id": "003E", "account_id": "001A", "deleted": True},
            {"source": "gainsight", "id": "P1", "sf_contact_id": "003B", "opted_out": True},
        ],
    )
    seed(
        engine,
        Entity.NPS_RESPONSE,
        [
            {
                "id": "n1",
                "contact_id": "003A",
                "account_id": "001A",
                "score": 7,
                "responded_at": ts(400),
            },
            {
                "id": "n2",
                "contact_id": "003A",
                "account_id": "001A",
                "score": 10,
                "responded_at": ts(10),
            },
            {
                "source": "gainsight",
                "id": "n3",
                "contact_id": "003B",
                "account_id": "001A",
                "score": 3,
                "responded_at": ts(5),
            },
            {
                "id": "n4",
                "contact_id": "003A",
                "account_id": "001A",
                "score": 0,
                "responded_at": ts(1),
                "deleted": True,
            },
        ],
    )
    seed(
        engine,
        Entity.TICKET,
        [
            {
                "id": "t1",
                "account_id": "001A",
                "priority": "P1",
                "is_closed": False,
                "opened_at": ts(9),
            },
            {
                "id": "t2",
                "account_id": "001A",
                "priority": "P2",
                "is_closed": False,
                "is_escalated": True,
                "opened_at": datetime(2026, 11, 2, 23, 30, tzinfo=UTC),
            },
            {
                "id": "t3",
                "account_id": "001A",
                "priority": "P1",
                "is_closed": True,
                "opened_at": ts(40),
            },
            {
                "id": "t4",
                "account_id": "001B",
                "priority": "P3",
                "is_closed": None,
                "opened_at": ts(31),
            },
        ],
    )
    seed(
        engine,
        Entity.OPPORTUNITY,
        [
            {
                "id": "o1",
                "account_id": "001A",
                "opportunity_type": "Renewal",
                "is_closed": False,
                "close_date": date(2027, 3, 1),
                "renewal_risk": "Low",
            },
            {
                "id": "o2",
                "account_id": "001A",
                "opportunity_type": "Renewal",
                "is_closed": False,
                "close_date": date(2027, 1, 31),
                "renewal_risk": "At Risk",
            },
            {
                "id": "o3",
                "account_id": "001B",
                "opportunity_type": "New Business",
                "is_closed": False,
            },
        ],
    )
    asks = [
        (
            "a1",
            "003A",
            "001A",
            "Reference Call",
            30,
        ),  # exactly 30 days ago: out of the 30-day window
        ("a2", "003A", "001A", "reference call", 29),
        ("a3", "003A", "001A", "Case Study", 89),
        ("a4", "003B", "001A", "Review", 90),  # exactly 90 days: out of the quarter
        ("a5", "003B", "001A", "Review", 3),
    ]
    seed(
        engine,
        Entity.ASK,
        [
            {
                "id": i,
                "contact_id": c,
                "account_id": a,
                "ask_type": t,
                "team": "Sales",
                "requested_date": d(n),
            }
            for i, c, a, t, n in asks
        ],
    )


def by_id(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["contact_id"]: r for r in frame.iter_rows(named=True)}
