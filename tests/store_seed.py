"""Insert canonical rows into a test store with few keystrokes (features and evaluation tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.store.models import CANONICAL_TABLES, evaluations

SYNCED = datetime(2026, 11, 1, tzinfo=UTC)


def seed(engine: Engine, entity: Entity, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (source defaults to salesforce; every column defaults to NULL)."""
    table = CANONICAL_TABLES[entity]
    cols = [c.name for c in table.c]
    full = []
    for r in rows:
        row = {c: None for c in cols}
        row.update({"source": "salesforce", "deleted": False, "synced_at": SYNCED})
        row.update(r)
        full.append(row)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), full)


def eligible(engine: Engine, scores: dict[str, float], now: datetime) -> None:
    """Verdicts on file: these contacts Eligible, consented to Reference Call, with a score."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(evaluations),
            [
                {
                    "entity_type": "contact",
                    "entity_id": cid,
                    "status": "Eligible",
                    "eligible": True,
                    "score": score,
                    "available_for": "Reference Call",
                    "evaluated_at": now,
                }
                for cid, score in scores.items()
            ],
        )
