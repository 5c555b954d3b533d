"""Why one contact or account has its status: features, rules, caps, score, history, audit.

The features are computed for that one entity with the same SQL as a full run (scoped to its
id), then evaluated with the same rules code, so what ``explain`` shows is what a run decides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import ERASED_REASON, Status, System
from rules import Policy, evaluate, evaluate_accounts, explain, rule_column
from rules.asks import ASK_SCHEMA, cap_filter
from rules.engine import today_for
from sync_service.evaluate.evaluation import erased_contacts, mark_erased
from sync_service.evaluate.features.query import FeatureQuery
from sync_service.store.models import (
    accounts,
    advocacy_asks,
    contacts,
    evaluation_history,
    evaluations,
)
from sync_service.writeback.audit import history as writeback_history

SALESFORCE = System.SALESFORCE
HISTORY_ROWS = 10
CONTACTS_SHOWN = 20


def _kind(engine: Engine, entity_id: str) -> tuple[str, str | None] | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(contacts.c.account_id).where(
                contacts.c.source == SALESFORCE,
                contacts.c.deleted == sa.false(),
                contacts.c.id == entity_id,
            )
        ).first()
        if row is not None:
            return "contact", row.account_id
        found = conn.execute(
            sa.select(accounts.c.id).where(
                accounts.c.source == SALESFORCE,
                accounts.c.deleted == sa.false(),
                accounts.c.id == entity_id,
            )
        ).first()
    return ("account", None) if found is not None else None


def _stored(engine: Engine, entity_type: str, entity_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        current = (
            conn.execute(
                sa.select(evaluations).where(
                    evaluations.c.entity_type == entity_type, evaluations.c.entity_id == entity_id
                )
            )
            .mappings()
            .first()
        )
        hist = conn.execute(
            sa.select(
                evaluation_history.c.changed_at,
                evaluation_history.c.old_status,
                evaluation_history.c.new_status,
                evaluation_history.c.reason,
                evaluation_history.c.policy_version,
            )
            .where(
                evaluation_history.c.entity_type == entity_type,
                evaluation_history.c.entity_id == entity_id,
            )
            .order_by(evaluation_history.c.id.desc())
            .limit(HISTORY_ROWS)
        ).mappings()
        return {
            "last_evaluation": dict(current) if current else None,
            "history": [dict(h) for h in hist],
        }


def explain_entity(
    engine: Engine, policy: Policy, entity_id: str, now: datetime
) -> dict[str, Any] | None:
    """Explain one contact or account (by Salesforce id); None when the store has no such id."""
    kind = _kind(engine, entity_id)
    if kind is None:
        return None
    entity_type, account_id = kind
    with engine.connect() as conn:
        erased = erased_contacts(conn)
        q = FeatureQuery(policy, now, conn.dialect.name)
        acc_id = account_id if entity_type == "contact" else entity_id
        if acc_id is not None:
            acc = q.finish_accounts(q.account_frame(conn, None, None, only=acc_id))
        else:
            acc = q.finish_accounts(pl.DataFrame({"account_id": pl.Series([], dtype=pl.String)}))
        if entity_type == "contact":
            frame = q.contact_frame(conn, lambda t: t.c.id == entity_id)
        else:
            frame = q.contact_frame(conn, lambda t: t.c.account_id == entity_id)
        feats = q.finish_contacts(frame, acc)
    if entity_type == "contact":
        out = explain(policy, feats, now)
        out["entity_type"] = "contact"
        if entity_id in erased:
            # what a run decides: the erasure's verdict, whatever the rules say
            out.update(
                status=Status.OPTED_OUT.value,
                eligible=False,
                score=None,
                reason=ERASED_REASON,
                next_available=None,
                available_for=None,
            )
        counted = _counted_asks(engine, policy, entity_id, account_id, now)
        for cap in out["caps"]:
            cap["asks"] = counted.get(cap["id"], [])
    else:
        results = mark_erased(evaluate(policy, feats, now), erased)
        verdict = evaluate_accounts(policy, acc, results, now).row(0, named=True)
        values = acc.row(0, named=True) if acc.height else {}
        susp = []
        for rule in policy.rules_of("suspension"):
            outcome = verdict[rule_column(rule.id)]
            susp.append(
                {
                    "id": rule.id,
                    "kind": rule.kind,
                    "when": " ".join(rule.when.split()),
                    "outcome": "unknown"
                    if outcome is None
                    else ("holds" if outcome else "does not hold"),
                    "reason": rule.reason.fill(values) if outcome else None,
                }
            )
        shown = results.sort("score", descending=True).head(CONTACTS_SHOWN)
        out = {
            "entity_type": "account",
            "account_id": entity_id,
            "now": now.isoformat(),
            "policy_version": policy.version,
            "policy_hash": policy.hash,
            "status": verdict["status"],
            "eligible": verdict["eligible"],
            "score": verdict["score"],
            "reason": verdict["reason"],
            "next_available": verdict["next_available"].isoformat()
            if verdict["next_available"]
            else None,
            "features": {k: _plain(v) for k, v in values.items() if k != "account_id"},
            "rules": susp,
            "contacts": {
                "total": verdict["contacts"],
                "by_status": dict(results["status"].value_counts().iter_rows()),
                "top": [
                    {
                        k: _plain(r[k])
                        for k in ("contact_id", "status", "score", "reason", "next_available")
                    }
                    for r in shown.iter_rows(named=True)
                ],
            },
        }
    out.update(_stored(engine, entity_type, entity_id))
    out["writeback"] = writeback_history(engine, entity_id)
    return out


def _counted_asks(
    engine: Engine, policy: Policy, contact_id: str, account_id: str | None, now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Per cap, the asks that count toward it (newest first): date, type, team, status.

    The asks are filtered with the same cap test as the evaluation's pure twin
    (:func:`rules.asks.cap_filter`), so the list and the count agree.
    """
    if not policy.caps:
        return {}
    t = advocacy_asks
    mine = t.c.contact_id == contact_id
    if account_id is not None and any(c.scope == "account" for c in policy.caps):
        mine = sa.or_(mine, t.c.account_id == account_id)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*[t.c[c] for c in ASK_SCHEMA]).where(
                t.c.deleted == sa.false(), t.c.requested_date.is_not(None), mine
            )
        ).all()
    asks = pl.DataFrame([tuple(r) for r in rows], schema=ASK_SCHEMA, orient="row")
    today = today_for(policy, now)
    out: dict[str, list[dict[str, Any]]] = {}
    for cap in policy.caps:
        key, value = (
            ("contact_id", contact_id) if cap.scope == "contact" else ("account_id", account_id)
        )
        hits = asks.filter((pl.col(key) == value) & cap_filter(cap, today)).sort(
            "requested_date", descending=True
        )
        out[cap.id] = [
            {
                "date": r["requested_date"].isoformat(),
                "type": r["ask_type"],
                "team": r["team"],
                "status": r["status"],
                "contact_id": r["contact_id"],
            }
            for r in hits.iter_rows(named=True)
        ]
    return out


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
