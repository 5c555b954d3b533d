"""A randomised store for the report tests: accounts, contacts, a status history, asks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.store.models import evaluation_history, evaluations
from tests.store_seed import seed

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
STATUSES = ("Eligible", "Fatigued", "Suspended", "Not Eligible", "Opted Out")
REGIONS = ("NA", "EMEA", "APAC", None)
SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
INDUSTRIES = ("Healthcare", "Retail", "Software", "Energy")
TEAMS = ("Sales", "Marketing", "Events", None)
TYPES = ("Reference Call", "Case Study", "Webinar")
OUTCOMES = ("Requested", "Accepted", "Declined", "Completed")


@dataclass
class RandomStore:
    """What was seeded, for the tests' own direct checks."""

    contact_ids: list[str]
    evaluated: dict[str, str]  # contact id -> current status


def make_store(engine: Engine, seed_value: int, *, contacts: int = 240) -> RandomStore:
    """Seed a store with random but consistent data (each history is one chain of changes)."""
    rng = random.Random(seed_value)
    accounts = []
    for i in range(max(4, contacts // 8)):
        accounts.append(
            {
                "id": f"001A{i:05d}",
                "name": f"Account {i}",
                "region": rng.choice(REGIONS),
                "segment": rng.choice(SEGMENTS),
                "industry": rng.choice(INDUSTRIES),
                "extra": {"employees": rng.choice((10, 50, 200))},
            }
        )
    seed(engine, Entity.ACCOUNT, accounts)
    rows = []
    for i in range(contacts):
        rows.append(
            {
                "id": f"003C{i:05d}",
                "account_id": rng.choice(accounts)["id"],
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "title": rng.choice(("CTO", "VP", None)),
                "deleted": rng.random() < 0.05,
            }
        )
    seed(engine, Entity.CONTACT, rows)
    history: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    evaluated: dict[str, str] = {}
    start = NOW - timedelta(days=800)
    for c in rows:
        if rng.random() < 0.08:
            continue  # never evaluated
        old = None
        t = start + timedelta(hours=rng.randint(0, 24 * 500))
        reason = ""
        while t <= NOW + timedelta(days=2):  # a few changes after "now": not yet happened
            new = rng.choice([s for s in STATUSES if s != old])
            reason = rng.choice(("cap 3 in 90d", "open escalation", "no consent", "promoter"))
            history.append(
                {
                    "entity_type": "contact",
                    "entity_id": c["id"],
                    "old_status": old,
                    "new_status": new,
                    "reason": reason,
                    "changed_at": t,
                }
            )
            old = new
            t += timedelta(hours=rng.randint(1, 24 * 120))
            if t > NOW:
                break
        if old is None or c["deleted"]:
            continue  # a deleted contact keeps its history but loses its verdict
        evaluated[c["id"]] = old
        verdicts.append(
            {
                "entity_type": "contact",
                "entity_id": c["id"],
                "status": old,
                "eligible": old == "Eligible",
                "score": round(rng.random() * 100, 1),
                "reason": reason,
                "next_available": (NOW + timedelta(days=rng.randint(1, 60))).date(),
                "evaluated_at": NOW,
            }
        )
    # history rows in a shuffled order: ids must not be taken for time
    rng.shuffle(history)
    with engine.begin() as conn:
        conn.execute(evaluation_history.insert(), history)
        conn.execute(evaluations.insert(), verdicts)
        conn.execute(
            evaluations.insert(),
            [
                {
                    "entity_type": "account",
                    "entity_id": a["id"],
                    "status": "Eligible",
                    "eligible": True,
                    "evaluated_at": NOW,
                }
                for a in accounts
            ],
        )
    # Deals: their own stream, so the rest of the store is what it was before they came.
    deal_rng = random.Random(seed_value * 7 + 1)
    deals = []
    for i in range(max(6, contacts // 3)):
        closed = deal_rng.random() < 0.6
        deals.append(
            {
                "id": f"006O{i:05d}",
                "account_id": deal_rng.choice(accounts)["id"],
                "stage": "Closed" if closed else "Negotiation",
                "is_closed": closed if deal_rng.random() > 0.03 else None,
                "is_won": closed and deal_rng.random() < 0.5,
                # some before the report's quarters, some past its last one, a few without
                "close_date": (NOW + timedelta(days=deal_rng.randint(-900, 500))).date()
                if deal_rng.random() > 0.03
                else None,
                "amount": float(deal_rng.randint(1, 500) * 1000)
                if deal_rng.random() > 0.05
                else None,
                "deleted": deal_rng.random() < 0.04,
                "source": "gainsight" if deal_rng.random() < 0.03 else "salesforce",
            }
        )
    seed(engine, Entity.OPPORTUNITY, deals)
    asks = []
    for i in range(contacts * 6):
        day: date = (NOW - timedelta(days=rng.randint(-3, 760))).date()
        asks.append(
            {
                "id": f"a0R{i:06d}",
                "contact_id": rng.choice(rows)["id"] if rng.random() > 0.02 else None,
                "account_id": None,
                "ask_type": rng.choice(TYPES),
                "status": rng.choice(OUTCOMES),
                "requested_date": day,
                "team": rng.choice(TEAMS),
                "deleted": rng.random() < 0.04,
                # a sales reference serves a deal (some deals get several asks, some none);
                # a few links name a deal the store does not hold
                "opportunity_id": (
                    deal_rng.choice(deals)["id"] if deal_rng.random() > 0.05 else "006Ogone"
                )
                if deal_rng.random() < 0.15
                else None,
            }
        )
    seed(engine, Entity.ASK, asks)
    return RandomStore([c["id"] for c in rows], evaluated)


def all_rows(engine: Engine, table: sa.Table) -> list[dict[str, Any]]:
    """Every row of a table, as dicts (the tests' direct reading of the store)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]
