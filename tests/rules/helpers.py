"""Builders for features frames: one dict per contact, defaults for an eligible advocate."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from rules import Policy, load_policy
from rules.asks import ASK_SCHEMA, ask_features, windowed_features

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def shipped_policy() -> Policy:
    return load_policy(ROOT / "config" / "rules.yaml")


def eligible_contact(**overrides: Any) -> dict[str, Any]:
    """A contact who passes every shipped rule and has never been asked."""
    row: dict[str, Any] = {
        "contact_id": "003A",
        "account_id": "001A",
        "opted_in": True,
        "opted_out": False,
        "nps_latest": 10,
        "nps_latest_date": date(2026, 6, 1),
        "nps_age_days": (TODAY - date(2026, 6, 1)).days,
        "nps_trend": 1,
        "open_escalations": 0,
        "oldest_open_escalation_date": None,
        "oldest_open_p1_days": None,
        "oldest_open_p1_date": None,
        "payment_overdue": False,
        "renewal_risk": None,
        "renewal_close_date": None,
        "customer_since": date(2024, 1, 1),
        "tenure_days": (TODAY - date(2024, 1, 1)).days,
        "health_score": 80.0,
        **{c: True for c in ("consent_reference_call", "consent_case_study")},
    }
    row.update(overrides)
    return row


def frame(
    policy: Policy,
    rows: list[dict[str, Any]],
    asks: list[dict[str, Any]] | None = None,
    now: datetime = NOW,
) -> pl.DataFrame:
    """A features frame for ``rows``; ask columns computed from ``asks`` by the pure twin."""
    schema = policy.input_schema()
    from_asks = {"last_ask_date", "asks_pending"} | {
        name for name, _s, _d in windowed_features(schema)
    }
    base = {k: v for k, v in schema.items() if not k.startswith("cap__") and k not in from_asks}
    contacts = pl.DataFrame([{k: r.get(k) for k in base} for r in rows], schema=base, orient="row")
    ask_frame = pl.DataFrame(asks or [], schema=ASK_SCHEMA, orient="row")
    return ask_features(policy, contacts, ask_frame, now)


def ask(
    days_ago: int,
    *,
    contact: str = "003A",
    account: str = "001A",
    ask_type: str = "Case Study",
    team: str = "Marketing",
    status: str = "Requested",
    today: date = TODAY,
) -> dict[str, Any]:
    from datetime import timedelta

    return {
        "contact_id": contact,
        "account_id": account,
        "ask_type": ask_type,
        "team": team,
        "status": status,
        "requested_date": today - timedelta(days=days_ago),
    }
