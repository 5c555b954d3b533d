"""The match stage on a real store: suggestions stored, changed texts written, closed cleared."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from connectors.memory import MemoryConnector
from sync_service.mapping import load_mappings
from sync_service.match.config import parse_matching
from sync_service.match.stage import match_all, suggestions_for
from sync_service.store.models import evaluations, opportunities
from sync_service.writeback.apply import apply_pending
from sync_service.writeback.report import WritebackReport
from tests.store_seed import seed

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
RULES = parse_matching(
    "top_n: 2\nterms: {industry: 3, region: 2}\nopportunities: {min_amount: 1000}\n"
    "load_spreading: 0\n",
    {},
    "matching.yaml",
)
TARGET = load_mappings(ROOT / "mappings").salesforce.writeback_for("opportunity")  # type: ignore[union-attr]
FIELD = "Suggested_References__c"


def _evaluation(cid: str, status: str, score: float, available_for: str) -> dict[str, Any]:
    return {
        "entity_type": "contact",
        "entity_id": cid,
        "status": status,
        "eligible": status == "Eligible",
        "score": score,
        "available_for": available_for,
        "next_available": None,
        "evaluated_at": NOW,
    }


def _seed(engine: Engine) -> None:
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {"id": "A1", "name": "Acme Health", "industry": "Health", "region": "EMEA"},
            {"id": "A2", "name": "Beta Health", "industry": "Health", "region": "EMEA"},
            {"id": "A3", "name": "Cora Retail", "industry": "Retail", "region": "EMEA"},
            {"id": "A4", "name": "Dune Health", "industry": "Health", "region": "APAC"},
        ],
    )
    seed(
        engine,
        Entity.CONTACT,
        [
            {"id": "C1", "account_id": "A1", "first_name": "Ana", "last_name": "Lopez"},
            {"id": "C2", "account_id": "A2", "first_name": "Ben", "last_name": "Ito"},
            {"id": "C3", "account_id": "A3", "first_name": "Cy", "last_name": "Moss"},
            {"id": "C4", "account_id": "A4", "first_name": "Di", "last_name": "Park"},
            {"id": "C5", "account_id": "A2", "first_name": "Eve", "last_name": "Ng"},
        ],
    )
    with engine.begin() as conn:
        conn.execute(
            sa.insert(evaluations),
            [
                _evaluation("C1", "Eligible", 90, "Reference Call;Case Study"),
                _evaluation("C2", "Eligible", 80, "Reference Call"),
                _evaluation("C3", "Eligible", 100, "Reference Call"),
                _evaluation("C4", "Eligible", 70, "Reference Call"),
                # eligible, but consented to case studies only: never proposed for a call
                _evaluation("C5", "Eligible", 100, "Case Study"),
            ],
        )
    seed(
        engine,
        Entity.OPPORTUNITY,
        [
            {"id": "O1", "account_id": "A1", "is_closed": False, "amount": 5000.0},
            {"id": "O2", "account_id": "A3", "is_closed": False, "amount": 5000.0},
            {"id": "O3", "account_id": "A2", "is_closed": False, "amount": 10.0},  # too small
            {"id": "O4", "account_id": "A2", "is_closed": True, "amount": 9000.0},  # closed
        ],
    )


def _apply(engine: Engine) -> MemoryConnector:
    crm = MemoryConnector()
    apply_pending(
        engine,
        crm,
        TARGET,  # type: ignore[arg-type]
        report=WritebackReport(dry_run=False),
        batch_size=100,
        max_attempts=1,
        retry_base_seconds=0,
        retry_max_seconds=0,
        run_id=None,
        now=lambda: NOW,
        sleep=time.sleep,
    )
    return crm


def _written(crm: MemoryConnector) -> dict[str, Any]:
    return {c.record_id: c.fields[FIELD] for _, changes in crm.writes for c in changes}


def test_open_deals_get_eligible_consented_advocates_from_other_accounts(engine: Engine) -> None:
    _seed(engine)
    counts = match_all(engine, RULES, target=TARGET, now=NOW, run_id=1)
    assert (counts.deals, counts.suggestions, counts.enqueued) == (2, 4, 2)
    with engine.connect() as conn:
        o1 = suggestions_for(conn, "O1")
        assert suggestions_for(conn, "O3") == []
    # C1 is the deal's own account; C2 1.0 x 80; C4 0.6 x 70 = 42 beats C3's 0.4 x 100 = 40
    assert [(s["contact_id"], s["score"], s["terms"]) for s in o1] == [
        ("C2", 80.0, {"industry": "Health", "region": "EMEA"}),
        ("C4", 42.0, {"industry": "Health"}),
    ]
    crm = _apply(engine)
    text = _written(crm)
    assert set(text) == {"O1", "O2"}
    assert text["O1"].splitlines() == [
        "1. Ben Ito (Beta Health): same industry (Health), region (EMEA); available now",
        "2. Di Park (Dune Health): same industry (Health); available now",
    ]


def test_a_second_run_on_the_same_data_writes_nothing(engine: Engine) -> None:
    _seed(engine)
    match_all(engine, RULES, target=TARGET, now=NOW, run_id=1)
    _apply(engine)
    counts = match_all(engine, RULES, target=TARGET, now=NOW, run_id=2)
    assert (counts.enqueued, counts.unchanged) == (0, 2)
    assert _apply(engine).writes == []


def test_a_fatigued_advocate_is_replaced_and_a_closed_deal_is_cleared(engine: Engine) -> None:
    _seed(engine)
    match_all(engine, RULES, target=TARGET, now=NOW, run_id=1)
    _apply(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(evaluations)
            .where(evaluations.c.entity_id == "C2")
            .values(status="Fatigued", eligible=False)
        )
        conn.execute(
            sa.update(opportunities).where(opportunities.c.id == "O2").values(is_closed=True)
        )
    counts = match_all(engine, RULES, target=TARGET, now=NOW, run_id=2)
    assert counts.cleared == 1
    with engine.connect() as conn:
        assert "C2" not in {s["contact_id"] for s in suggestions_for(conn, "O1")}
        assert suggestions_for(conn, "O2") == []
    text = _written(_apply(engine))
    assert set(text) == {"O1", "O2"}
    assert text["O2"] is None
    assert "Ben Ito" not in text["O1"]


def test_a_later_next_available_date_is_shown(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(evaluations)
            .where(evaluations.c.entity_id == "C2")
            .values(next_available=date(2026, 12, 20))
        )
    match_all(engine, RULES, target=TARGET, now=NOW, run_id=1)
    text = _written(_apply(engine))
    assert text["O1"].splitlines()[0].endswith("; available from 2026-12-20")


def test_a_text_still_queued_when_the_deal_closes_is_never_sent(engine: Engine) -> None:
    _seed(engine)
    match_all(engine, RULES, target=TARGET, now=NOW, run_id=1)  # queued; the CRM is down
    with engine.begin() as conn:
        conn.execute(
            sa.update(opportunities).where(opportunities.c.id == "O2").values(is_closed=True)
        )
    counts = match_all(engine, RULES, target=TARGET, now=NOW, run_id=2)
    assert counts.cleared == 0  # nothing was ever written to O2: nothing to clear
    assert set(_written(_apply(engine))) == {"O1"}
