"""A contact erased on request is Opted Out, "Erased on request", whatever the policy says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from rules import load_policy
from sync_service.evaluate.evaluation import erased_contacts, evaluate_all
from sync_service.evaluate.explain import explain_entity
from sync_service.store.models import evaluations
from tests.store_seed import seed

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = load_policy(ROOT / "config" / "rules.yaml")


def test_an_erased_promoter_is_opted_out_with_the_erasure_reason(engine: Engine):
    seed(
        engine, Entity.ACCOUNT, [{"id": "001A", "customer_since": NOW.date() - timedelta(days=800)}]
    )
    promoter = {"account_id": "001A", "opted_in": True, "opted_out": False}
    seed(
        engine,
        Entity.CONTACT,
        [
            # the CRM still says "opted in", and the answers still say promoter
            {"id": "003E", **promoter, "extra": {"_erased": True}},
            {"id": "003K", **promoter, "email": "kept@example.org"},
            # a Gainsight row marked erased is not a Salesforce contact to evaluate
            {"source": "gainsight", "id": "P1", "extra": {"_erased": True}},
        ],
    )
    seed(
        engine,
        Entity.NPS_RESPONSE,
        [
            {"id": f"n{c}", "contact_id": c, "score": 10, "responded_at": NOW - timedelta(days=5)}
            for c in ("003E", "003K")
        ],
    )
    with engine.connect() as conn:
        assert erased_contacts(conn) == ["003E"]
    summary = evaluate_all(engine, POLICY, NOW, None)
    assert summary.contacts == 2
    with engine.connect() as conn:
        rows = {
            r.entity_id: (r.status, r.eligible, r.score, r.reason)
            for r in conn.execute(
                sa.select(evaluations).where(evaluations.c.entity_type == "contact")
            )
        }
    assert rows["003E"] == ("Opted Out", False, None, "Erased on request")
    assert rows["003K"][0] != "Opted Out"


def test_explain_shows_the_erasure_verdict(engine: Engine):
    seed(engine, Entity.ACCOUNT, [{"id": "001A"}])
    seed(
        engine,
        Entity.CONTACT,
        [{"id": "003E", "account_id": "001A", "opted_in": True, "extra": {"_erased": True}}],
    )
    out = explain_entity(engine, POLICY, "003E", NOW)
    assert out is not None
    assert (out["status"], out["reason"], out["score"]) == ("Opted Out", "Erased on request", None)
    account = explain_entity(engine, POLICY, "001A", NOW)
    assert account is not None
    assert account["contacts"]["by_status"] == {"Opted Out": 1}
