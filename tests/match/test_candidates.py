"""The store's candidates, a group at a time: the same ranking as the candidates held in memory."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.match.candidates import StoreCandidates, groups_table
from sync_service.match.config import parse_matching
from sync_service.match.rank import FrameSource, Ranker
from sync_service.match.stage import open_deals
from sync_service.store.models import evaluations
from tests.store_seed import seed

NOW = datetime(2026, 12, 1, tzinfo=UTC)
RULES = parse_matching(
    "top_n: 3\nterms: {industry: 3, region: 2, size_band: 1}\n"
    "size: {field: health_score, bounds: [50]}\nload_spreading: 1\n",
    {},
    "matching.yaml",
)
# Only a whole ask type counts: "Reference Calls" and "Case Study" alone are not consent.
CONSENTS = ["Reference Call", "Case Study;Reference Call", "Case Study", "Reference Calls", None]


def _seed(engine: Engine, rnd: random.Random) -> list[dict[str, Any]]:
    """A random store; returns the candidates as the matching must see them."""
    terms = {
        f"A{a:02d}": (rnd.choice(["H", "R", None]), rnd.choice(["E", None]), rnd.randrange(100))
        for a in range(12)
    }
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {"id": a, "industry": i, "region": r, "health_score": float(h)}
            for a, (i, r, h) in terms.items()
        ],
    )
    # AZZ is not in the store: its contacts have every term NULL
    account_ids: list[str | None] = [*terms, "AZZ", None]
    people = []
    for n in range(90):
        status = rnd.choice(["Eligible", "Eligible", "Eligible", "Fatigued"])
        people.append(
            {
                "id": f"C{rnd.randrange(1000):03d}-{n}",
                "account_id": rnd.choice(account_ids),
                "status": status,
                "score": rnd.choice([None, 0.0, 50.0, 50.0, 80.0, 100.0]),
                "available_for": rnd.choice(CONSENTS),
            }
        )
    seed(engine, Entity.CONTACT, [{"id": p["id"], "account_id": p["account_id"]} for p in people])
    with engine.begin() as conn:
        conn.execute(
            sa.insert(evaluations),
            [
                {
                    "entity_type": "contact",
                    "entity_id": p["id"],
                    "status": p["status"],
                    "eligible": p["status"] == "Eligible",
                    "score": p["score"],
                    "available_for": p["available_for"],
                    "evaluated_at": NOW,
                }
                for p in people
            ],
        )
    seed(
        engine,
        Entity.OPPORTUNITY,
        [
            {"id": f"O{n:03d}", "account_id": rnd.choice(account_ids), "is_closed": False}
            for n in range(60)
        ],
    )
    out = []
    for p in people:
        consent = p["available_for"] is not None and "Reference Call" in p["available_for"].split(
            ";"
        )
        if p["status"] != "Eligible" or not consent:
            continue
        ind, reg, health = terms.get(p["account_id"] or "", (None, None, None))
        band = None if health is None else ("<50" if health < 50 else ">=50")
        out.append(
            {
                "contact_id": p["id"],
                "account_id": p["account_id"],
                "score": p["score"],
                "k_industry": ind,
                "k_region": reg,
                "k_size_band": band,
            }
        )
    return out


@pytest.mark.parametrize("seed_", [1, 2, 3])
@pytest.mark.parametrize(
    ("up_front", "first_read"),
    # the first pass holds the first read, falls short of it, or holds more than it
    [(1, 1), (1, 2), (256, 1)],
)
def test_reading_the_store_a_row_at_a_time_ranks_as_the_candidates_held_in_memory(
    engine: Engine, seed_: int, up_front: int, first_read: int
) -> None:
    expected_cands = _seed(engine, random.Random(seed_))
    frame = pl.DataFrame(
        expected_cands,
        schema={
            "contact_id": pl.String,
            "account_id": pl.String,
            "score": pl.Float64,
            "k_industry": pl.String,
            "k_region": pl.String,
            "k_size_band": pl.String,
        },
    )
    terms = list(RULES.weights)
    with engine.connect() as conn:
        source = StoreCandidates(conn, RULES, first_page=up_front)
        try:
            assert source.count == len(expected_cands)
            # pages of one or two rows: the keyset crosses every tie of scores
            store = Ranker(source, RULES.weights, 3, 1.0, first_page=first_read, max_page=2)
            memory = Ranker(FrameSource(frame, terms), RULES.weights, 3, 1.0)
            got, want = [], []
            for deals in open_deals(conn, RULES, 7, source):
                got += list(store.rank(deals))
                want += list(memory.rank(deals))
        finally:
            source.close()
        # the temporary table is gone: the pooled connection can run the next match
        assert not sa.inspect(conn).has_table(groups_table.name)
    assert len(got) > 0
    assert got == want
    assert store.read <= len(expected_cands)
