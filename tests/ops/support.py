"""Helpers shared by the ops tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any


def overlaps(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Pairs of runs of one job whose [started_at, finished_at] intersect."""
    found = []
    by_job: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_job.setdefault(r["job"], []).append(r)
    for items in by_job.values():
        items.sort(key=lambda r: r["started_at"])
        for a, b in itertools.pairwise(items):
            end = a["finished_at"] or datetime.max.replace(tzinfo=UTC)
            if b["started_at"] < end:
                found.append((a["id"], b["id"]))
    return found
