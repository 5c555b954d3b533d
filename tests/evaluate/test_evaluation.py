"""Evaluating the store: verdicts, history of status changes, dry run, last valid policy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import PolicyError, StoreError
from canonical.model import Entity
from rules import load_policy
from sync_service.evaluate import evaluation
from sync_service.evaluate.evaluation import evaluate_all, load_policy_or_last_valid
from sync_service.ops.runs import run_record
from sync_service.store.models import contacts, evaluation_history, evaluations, tickets
from tests.store_seed import seed

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = load_policy(ROOT / "config" / "rules.yaml")


def seed_accounts(engine: Engine) -> None:
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {
                "id": "001A",
                "customer_since": NOW.date() - timedelta(days=800),
                "payment_overdue": False,
            },
            {"id": "001B", "customer_since": NOW.date() - timedelta(days=800)},
        ],
    )
    seed(
        engine,
        Entity.CONTACT,
        [{"id": f"003A{i}", "account_id": "001A", "opted_in": True} for i in range(3)]
        + [
            {"id": "003B0", "account_id": "001B", "opted_in": True},
            {"id": "003B1", "account_id": "001B", "opted_in": False},
            {"id": "003A3", "account_id": "001A", "opted_in": False},
            {"id": "003X", "account_id": None, "opted_in": True, "opted_out": True},
        ],
    )
    seed(
        engine,
        Entity.NPS_RESPONSE,
        [
            {"id": f"n{c}", "contact_id": c, "score": 10, "responded_at": NOW - timedelta(days=20)}
            for c in ("003A0", "003A1", "003A2", "003B0", "003B1")
        ],
    )
    seed(
        engine,
        Entity.TICKET,
        [
            {
                "id": "t1",
                "account_id": "001B",
                "is_closed": False,
                "is_escalated": True,
                "opened_at": datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
            },
        ],
    )


def current(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    with engine.connect() as conn:
        return {
            (r.entity_type, r.entity_id): dict(r._mapping)
            for r in conn.execute(sa.select(evaluations))
        }


def history(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(sa.select(evaluation_history).order_by(evaluation_history.c.id))
        ]


def test_evaluate_all_records_verdicts_and_history(engine: Engine) -> None:
    seed_accounts(engine)
    with run_record(engine, "evaluate") as run:
        summary = evaluate_all(engine, POLICY, NOW, run, chunk_size=2)
    assert (summary.contacts, summary.accounts) == (7, 2)
    rows = current(engine)
    assert len(rows) == 9
    assert rows[("contact", "003A0")]["status"] == "Eligible"
    assert rows[("contact", "003A0")]["next_available"] is None  # may be asked now
    assert rows[("contact", "003B0")]["status"] == "Suspended"
    assert rows[("contact", "003B0")]["reason"] == "Open escalation since 2026-11-02"
    assert rows[("contact", "003B1")]["status"] == "Suspended"  # suspension outranks the opt-in
    assert rows[("contact", "003A3")]["reason"] == "not opted in"
    assert rows[("contact", "003X")]["status"] == "Opted Out"
    assert rows[("account", "001A")]["reason"] == "3 eligible advocates"
    assert rows[("account", "001B")]["status"] == "Suspended"
    a0 = rows[("contact", "003A0")]
    assert (a0["policy_version"], a0["policy_hash"], a0["run_id"]) == (
        POLICY.version,
        POLICY.hash,
        run.id,
    )
    assert a0["details"]["rules"]["recent_promoter"] is True
    assert 0 <= a0["score"] <= 100
    hist = history(engine)
    assert len(hist) == 9
    assert all(h["old_status"] is None and h["changed_at"] == NOW for h in hist)
    assert run.counts["evaluated.contacts"] == 7

    # the same store again: nothing changes, nothing is added to the history
    again = evaluate_all(engine, POLICY, NOW + timedelta(hours=1), None)
    assert again.changed == 0
    # ... and no verdict is rewritten: evaluated_at still says when each last changed
    assert {r["evaluated_at"] for r in current(engine).values()} == {NOW}
    assert len(history(engine)) == 9

    # the escalation closes: account B and its opted-in contact become eligible
    with engine.begin() as conn:
        conn.execute(tickets.update().values(is_closed=True))
    later = NOW + timedelta(days=1)
    third = evaluate_all(engine, POLICY, later, None)
    assert third.transitions == {
        ("contact", "Suspended", "Eligible"): 1,
        ("contact", "Suspended", "Not Eligible"): 1,
        ("account", "Suspended", "Eligible"): 1,
    }
    new = history(engine)[9:]
    assert {(h["entity_id"], h["old_status"], h["new_status"]) for h in new} == {
        ("003B0", "Suspended", "Eligible"),
        ("003B1", "Suspended", "Not Eligible"),
        ("001B", "Suspended", "Eligible"),
    }
    assert all(h["changed_at"] == later and h["policy_hash"] == POLICY.hash for h in new)


def test_verdicts_of_records_deleted_in_the_crm_are_dropped(engine: Engine) -> None:
    seed_accounts(engine)
    evaluate_all(engine, POLICY, NOW, None)
    with engine.begin() as conn:
        conn.execute(contacts.update().where(contacts.c.id == "003A1").values(deleted=True))
        conn.execute(contacts.delete().where(contacts.c.id == "003A2"))  # gone without a trace

    dry = evaluate_all(engine, POLICY, NOW, None, dry_run=True)
    assert dry.removed == 2
    assert ("contact", "003A1") in current(engine)

    with run_record(engine, "evaluate") as run:
        summary = evaluate_all(engine, POLICY, NOW, run)
    assert summary.removed == 2
    assert run.counts["evaluation.removed"] == 2
    rows = current(engine)
    assert ("contact", "003A1") not in rows
    assert ("contact", "003A2") not in rows
    assert ("contact", "003A0") in rows
    assert ("account", "001A") in rows
    assert len(rows) == 7
    # their history stays
    assert {h["entity_id"] for h in history(engine)} >= {"003A1", "003A2"}
    assert evaluate_all(engine, POLICY, NOW, None).removed == 0


def test_dry_run_reports_changes_and_writes_nothing(engine: Engine) -> None:
    seed_accounts(engine)
    evaluate_all(engine, POLICY, NOW, None)
    before, hist_before = current(engine), history(engine)
    seed(
        engine,
        Entity.ASK,
        [
            {
                "id": f"k{i}",
                "contact_id": f"003A{i}",
                "account_id": "001A",
                "ask_type": "Reference Call",
                "requested_date": NOW.date() - timedelta(days=3),
            }
            for i in range(3)
        ],
    )
    summary = evaluate_all(engine, POLICY, NOW, None, dry_run=True)
    assert summary.dry_run
    assert summary.transitions[("contact", "Eligible", "Fatigued")] == 3
    assert summary.transitions[("account", "Eligible", "Fatigued")] == 1
    assert summary.examples[("contact", "Eligible", "Fatigued")] == ["003A0", "003A1", "003A2"]
    out = summary.as_dict()
    assert out["changed"] == 4
    assert current(engine) == before
    assert history(engine) == hist_before


def test_a_lost_chunk_fails_the_run_instead_of_truncating(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_accounts(engine)
    real = evaluation.stream_feature_chunks

    def drop_first(*args: Any, **kwargs: Any) -> Iterator[Any]:
        chunks = real(*args, **kwargs)
        next(chunks)
        yield from chunks

    monkeypatch.setattr(evaluation, "stream_feature_chunks", drop_first)
    with pytest.raises(StoreError, match="rather than truncated"):
        evaluate_all(engine, POLICY, NOW, None, chunk_size=2)


def test_an_invalid_policy_keeps_the_last_valid_one_running(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    snap = tmp_path / "var" / "rules.last-valid.yaml"
    good = (ROOT / "config" / "rules.yaml").read_text()
    rules.write_text(good)
    policy, problems = load_policy_or_last_valid(rules, snap)
    assert problems == []
    assert snap.read_text() == good

    rules.write_text(good.replace("open_escalations > 0", "open_escalation > 0"))
    kept, problems = load_policy_or_last_valid(rules, snap)
    assert kept.hash == policy.hash
    assert "open_escalation" in [r.id for r in kept.rules]  # the rule is still on
    assert len(problems) == 1
    assert "did you mean 'open_escalations'" in problems[0]
    assert snap.read_text() == good  # the snapshot is not replaced by the broken file


def test_an_invalid_policy_without_a_last_valid_one_is_an_error(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: x\nfeatures: {nps_latest: string}\n")
    with pytest.raises(PolicyError):
        load_policy_or_last_valid(rules, tmp_path / "snap.yaml")
