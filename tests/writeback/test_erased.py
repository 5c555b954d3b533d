"""People erased on request: their Opted Out verdict is written once, or not at all if so set."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.models import contacts
from sync_service.writeback import run_writeback
from tests.writeback.fakes import (
    FakeCRM,
    blank,
    contact_target,
    evaluation,
    seed_evaluations,
    settings,
    sync_from,
    sync_records,
)

ERASED, OTHER = "003000000000000001", "003000000000000002"


def mark_erased(engine: Engine, record_id: str) -> None:
    with engine.begin() as conn:
        extra = conn.execute(sa.select(contacts.c.extra).where(contacts.c.id == record_id)).scalar()
        conn.execute(
            contacts.update()
            .where(contacts.c.id == record_id)
            .values(extra={**(extra or {}), "_erased": True})
        )


def write(engine: Engine, crm: FakeCRM, *, write_erased: bool) -> dict[str, int]:
    report = run_writeback(
        engine,
        [contact_target()],
        {"salesforce": crm},
        settings(),
        write_erased=write_erased,
        sleep=lambda _s: None,
    )
    return dict(report.counts)


def seed(engine: Engine) -> None:
    sync_records(engine, {ERASED: blank(), OTHER: blank()})
    mark_erased(engine, ERASED)
    opted_out = evaluation(
        status="Opted Out", eligible=False, score=None, reason="Erased on request"
    )
    seed_evaluations(engine, {ERASED: opted_out, OTHER: evaluation()})


def test_the_erasure_verdict_is_written_once(engine: Engine):
    seed(engine)
    crm = FakeCRM()
    write(engine, crm, write_erased=True)
    sent = {c.record_id: c.fields for _, calls in crm.write_calls for c in calls}
    assert sent[ERASED]["Advocate_Status__c"] == "Opted Out"
    assert sent[ERASED]["Advocate_Reason__c"] == "Erased on request"
    sync_from(engine, crm)
    mark_erased(engine, ERASED)
    calls = len(crm.write_calls)
    assert write(engine, crm, write_erased=True)["calls"] == 0
    assert len(crm.write_calls) == calls


def test_write_erased_status_off_leaves_their_record_alone(engine: Engine):
    seed(engine)
    crm = FakeCRM()
    counts = write(engine, crm, write_erased=False)
    sent = {c.record_id for _, calls in crm.write_calls for c in calls}
    assert sent == {OTHER}
    assert counts["erased"] == 1
