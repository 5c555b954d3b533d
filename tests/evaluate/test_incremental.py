"""Incremental evaluation gives the verdicts a full one gives, on randomised stores and changes.

Each round builds a random store, evaluates it in full, then applies random changes the way the
ingest does (marks in the rows' transaction, :mod:`sync_service.sync.changes`) and moves the
clock by a random number of days, evaluates incrementally, and checks that a full evaluation
right after changes nothing: not one verdict, not one history row.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from rules import load_policy
from sync_service.evaluate.ask_audit import AuditSink
from sync_service.evaluate.evaluation import evaluate_all
from sync_service.evaluate.guard import AskTarget, Caller, Guard
from sync_service.store.models import (
    CANONICAL_TABLES,
    eval_marks,
    evaluation_history,
    evaluations,
)
from sync_service.store.upsert import upsert
from sync_service.sync import changes

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "config" / "rules.yaml")
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SYNCED = datetime(2026, 11, 1, tzinfo=UTC)
ASK_TYPES = ["Reference Call", "Case Study", "Webinar"]
ROUNDS = 12


def _row(entity: Entity, values: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: None for c in CANONICAL_TABLES[entity].c}
    row.update({"source": "salesforce", "deleted": False, "synced_at": SYNCED, "extra": {}})
    row.update(values)
    return row


class Store:
    """A random org: a handful of accounts, their contacts, answers, cases, renewals, asks."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.today = today
        self.accounts = [f"001{i:03d}" for i in range(rng.randint(2, 6))]
        self.contacts: list[str] = []
        self.n = 0

    def _day(self, back: int) -> date:
        return self.today - timedelta(days=self.rng.randint(0, back))

    def account(self, aid: str) -> dict[str, Any]:
        r = self.rng
        return _row(
            Entity.ACCOUNT,
            {
                "id": aid,
                # up to four years: the clock moves cross onboarding and anniversaries (score)
                "customer_since": self._day(1460) if r.random() < 0.9 else None,
                "payment_overdue": r.random() < 0.1,
                "health_score": r.choice([None, 40.0, 80.0]),
            },
        )

    def contact(self, cid: str) -> dict[str, Any]:
        r = self.rng
        return _row(
            Entity.CONTACT,
            {
                "id": cid,
                "account_id": r.choice([*self.accounts, None])
                if r.random() < 0.15
                else r.choice(self.accounts),
                "opted_in": r.random() < 0.8,
                "opted_out": r.random() < 0.05,
                "consent_types": r.choice([None, "Reference Call", "Reference Call;Case Study"]),
                "deleted": r.random() < 0.03,
            },
        )

    def person(self, pid: str) -> dict[str, Any]:
        """A Gainsight person: its opt flags count for the Salesforce contact it is linked to."""
        r = self.rng
        return _row(
            Entity.CONTACT,
            {
                "id": pid,
                "source": "gainsight",
                "sf_contact_id": r.choice([*self.contacts, None]),
                "opted_in": r.choice([True, False, None]),
                "opted_out": r.random() < 0.2,
                "deleted": r.random() < 0.05,
            },
        )

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n:05d}"

    def others(self) -> dict[Entity, list[dict[str, Any]]]:
        r = self.rng
        out: dict[Entity, list[dict[str, Any]]] = {e: [] for e in Entity}
        for _ in range(r.randint(0, 4)):
            cid = r.choice(self.contacts)
            out[Entity.NPS_RESPONSE].append(
                _row(
                    Entity.NPS_RESPONSE,
                    {
                        "id": self._id("n"),
                        "contact_id": cid,
                        "account_id": r.choice(self.accounts) if r.random() < 0.2 else None,
                        "score": r.randint(5, 10),
                        "responded_at": datetime.combine(
                            self._day(400), datetime.min.time(), tzinfo=UTC
                        ),
                    },
                )
            )
        for _ in range(r.randint(0, 5)):
            cid = r.choice(self.contacts)
            out[Entity.ASK].append(
                _row(
                    Entity.ASK,
                    {
                        "id": self._id("a"),
                        "contact_id": cid,
                        "account_id": r.choice(self.accounts),
                        "ask_type": r.choice(ASK_TYPES),
                        "status": r.choice(["Requested", "Completed", "Declined"]),
                        "requested_date": self._day(100),
                        "team": "Marketing",
                    },
                )
            )
        for _ in range(r.randint(0, 2)):
            out[Entity.TICKET].append(
                _row(
                    Entity.TICKET,
                    {
                        "id": self._id("t"),
                        "account_id": r.choice(self.accounts),
                        "priority": r.choice(["P1", "P2"]),
                        "is_closed": r.random() < 0.4,
                        "is_escalated": r.random() < 0.3,
                        "opened_at": datetime.combine(
                            self._day(20), datetime.min.time(), tzinfo=UTC
                        ),
                    },
                )
            )
        if r.random() < 0.3:
            out[Entity.OPPORTUNITY].append(
                _row(
                    Entity.OPPORTUNITY,
                    {
                        "id": self._id("o"),
                        "account_id": r.choice(self.accounts),
                        "opportunity_type": "Renewal",
                        "is_closed": False,
                        "renewal_risk": r.choice(["High", "Low"]),
                        "close_date": self.today + timedelta(days=r.randint(1, 60)),
                    },
                )
            )
        return out

    def first(self) -> dict[Entity, list[dict[str, Any]]]:
        self.contacts = [f"003{i:03d}" for i in range(self.rng.randint(3, 12))]
        rows = self.others()
        for _ in range(3):
            for e, more in self.others().items():
                rows[e] += more
        rows[Entity.ACCOUNT] = [self.account(a) for a in self.accounts]
        rows[Entity.CONTACT] = [self.contact(c) for c in self.contacts]
        rows[Entity.CONTACT] += [self.person(f"gsp{i}") for i in range(3)]
        return rows

    def change(self) -> dict[Entity, list[dict[str, Any]]]:
        r = self.rng
        rows = self.others()
        rows[Entity.ACCOUNT] = [self.account(a) for a in self.accounts if r.random() < 0.2]
        if r.random() < 0.3:
            self.contacts.append(self._id("003N"))
        rows[Entity.CONTACT] = [self.contact(c) for c in self.contacts if r.random() < 0.2]
        rows[Entity.CONTACT] += [self.person(f"gsp{i}") for i in range(3) if r.random() < 0.3]
        return rows


def ingest(engine: Engine, rows: dict[Entity, list[dict[str, Any]]], now: datetime) -> None:
    """As the ingest does: marks from a comparison with the stored rows, then the upsert."""
    with engine.begin() as conn:
        for entity, batch in rows.items():
            table = CANONICAL_TABLES[entity]
            for source in ("salesforce", "gainsight"):
                part = [row for row in batch if row["source"] == source]
                if part:
                    marks = changes.changed_marks(conn, table, source, part, now)
                    changes.write_marks(conn, marks)
                    upsert(conn, table, part)


def verdicts(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    skip = {"evaluated_at", "run_id"}
    with engine.connect() as conn:
        return {
            (r["entity_type"], r["entity_id"]): {k: v for k, v in r.items() if k not in skip}
            for r in conn.execute(sa.select(evaluations)).mappings()
        }


def history(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(evaluation_history)).scalar_one()
        )


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (*CANONICAL_TABLES.values(), evaluations, evaluation_history, eval_marks):
            conn.execute(table.delete())


def test_incremental_and_full_evaluation_give_identical_verdicts(engine: Engine):
    evaluated = 0
    for seed in range(ROUNDS):
        rng = random.Random(seed)
        clear(engine)
        now = T0
        store = Store(rng, now.date())
        ingest(engine, store.first(), now)
        evaluate_all(engine, POLICY, now, None, incremental=True)  # nothing on file: full
        for _ in range(3):
            now += timedelta(days=rng.choice([0, 1, 3, 13, 31]))
            store.today = now.date()
            if rng.random() < 0.8:
                ingest(engine, store.change(), now)
            summary = evaluate_all(engine, POLICY, now, None, incremental=True)
            assert summary.incremental
            evaluated += summary.contacts
            incremental, n_history = verdicts(engine), history(engine)
            full = evaluate_all(engine, POLICY, now, None)
            assert full.changed == 0, f"seed {seed}: {full.transitions}"
            assert verdicts(engine) == incremental, f"seed {seed}, {now.date()}"
            assert history(engine) == n_history
    # the incremental runs did read something (they are not vacuously equal)
    assert evaluated > 0


def test_a_cycle_with_no_change_and_no_due_verdict_evaluates_nothing(engine: Engine):
    store = Store(random.Random(7), T0.date())
    ingest(engine, store.first(), T0)
    evaluate_all(engine, POLICY, T0, None)
    with engine.begin() as conn:
        # nothing due: every verdict valid for a while yet
        conn.execute(evaluations.update().values(valid_until=T0.date() + timedelta(days=5)))
    # the echo: the same rows again (a writeback moved only the modstamps)
    with engine.connect() as conn:
        table = CANONICAL_TABLES[Entity.CONTACT]
        again = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    for row in again:
        row["source_updated_at"] = T0
    ingest(engine, {Entity.CONTACT: again}, T0)
    summary = evaluate_all(engine, POLICY, T0 + timedelta(hours=1), None, incremental=True)
    assert summary.incremental
    assert (summary.contacts, summary.accounts) == (0, 0)


def test_an_ask_logged_through_the_guard_is_evaluated_in_the_next_cycle(engine: Engine):
    store = Store(random.Random(3), T0.date())
    ingest(engine, store.first(), T0)
    evaluate_all(engine, POLICY, T0, None)
    with engine.begin() as conn:
        conn.execute(evaluations.update().values(valid_until=None))
        contact = conn.execute(
            sa.select(evaluations.c.entity_id).where(
                evaluations.c.entity_type == "contact", evaluations.c.status == "Eligible"
            )
        ).scalar()
    if contact is None:  # the seed gives an Eligible contact; say so if it ever does not
        raise AssertionError("seed 3 has no Eligible contact to ask")
    before = verdicts(engine)[("contact", contact)]["recent_asks"] or 0
    guard = Guard(engine, lambda: POLICY, None, AuditSink(engine, interval=0), lambda: T0)
    target = AskTarget(contact, "Case Study", None)
    # an override, so that it is logged whatever the verdict says
    outcome = guard.log(Caller(None, None), target, "test", override_reason="a test")
    assert outcome is not None
    assert outcome.ask_id is not None
    summary = evaluate_all(engine, POLICY, T0 + timedelta(minutes=5), None, incremental=True)
    assert summary.incremental
    assert 0 < summary.contacts < len(store.contacts)
    assert verdicts(engine)[("contact", contact)]["recent_asks"] == before + 1


def test_a_gainsight_opt_out_still_counts_when_its_contact_is_evaluated_again(engine: Engine):
    store = Store(random.Random(5), T0.date())
    rows = store.first()
    sf = next(r for r in rows[Entity.CONTACT] if r["source"] == "salesforce" and r["account_id"])
    sf.update(opted_in=True, opted_out=False, deleted=False)
    person = store.person("gsp-out") | {"sf_contact_id": sf["id"], "opted_out": True}
    person["deleted"] = False
    rows[Entity.CONTACT].append(person)
    ingest(engine, rows, T0)
    evaluate_all(engine, POLICY, T0, None)
    assert verdicts(engine)[("contact", sf["id"])]["status"] == "Opted Out"
    # the Salesforce contact changes (not the person): its account is evaluated again
    ingest(engine, {Entity.CONTACT: [sf | {"title": "VP"}]}, T0)
    summary = evaluate_all(engine, POLICY, T0 + timedelta(hours=1), None, incremental=True)
    assert summary.incremental
    assert 0 < summary.contacts < len(store.contacts)
    assert verdicts(engine)[("contact", sf["id"])]["status"] == "Opted Out"
