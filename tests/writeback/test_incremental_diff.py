"""The incremental diff: only verdicts rewritten and records read again since the last writeback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from sync_service.ops.runs import run_record
from sync_service.store.models import contacts
from sync_service.store.upsert import upsert
from sync_service.sync import changes
from sync_service.writeback import run_writeback
from tests.writeback.fakes import (
    FIELDS,
    FakeCRM,
    blank,
    contact_target,
    evaluation,
    seed_evaluations,
    settings,
    sync_records,
)

OLD = datetime.now(UTC) - timedelta(hours=2)


def ingest(
    engine: Engine, values: dict[str, dict[str, Any]], object_name: str | None = None
) -> None:
    """As the ingest does: the CRM's values read again, marked where they changed.

    ``object_name``: as the ingest passes it, so that the echo of our own writes is known.
    """
    now = datetime.now(UTC)
    rows = [
        {"source": "salesforce", "id": i, "extra": {"_crm": dict(v)}, "synced_at": now}
        for i, v in values.items()
    ]
    with engine.begin() as conn:
        marks = changes.changed_marks(conn, contacts, "salesforce", rows, now, object_name)
        changes.write_marks(conn, marks)
        upsert(conn, contacts, rows)


def write(engine: Engine, crm: FakeCRM, **kw: Any) -> Any:
    return run_writeback(
        engine, [contact_target()], {"salesforce": crm}, settings(), sleep=lambda _s: None, **kw
    )


def sent(crm: FakeCRM, since: int = 0) -> dict[str, dict[str, Any]]:
    return {ch.record_id: ch.fields for _, chs in crm.write_calls[since:] for ch in chs}


def evaluate(engine: Engine, rows: dict[str, dict[str, Any]]) -> None:
    """An evaluation run rewriting these verdicts (its run id on each row)."""
    with run_record(engine, "evaluate") as run:
        seed_evaluations(engine, {k: {**v, "run_id": run.id} for k, v in rows.items()})


def first_writeback(engine: Engine) -> tuple[list[str], FakeCRM, Any]:
    """Four contacts evaluated and written once; their ids, the CRM and the report."""
    ids = [f"003{i:015d}" for i in range(4)]
    sync_records(engine, {i: blank() for i in ids}, synced_at=OLD)
    evaluate(engine, {i: evaluation() for i in ids})
    crm = FakeCRM()
    return ids, crm, write(engine, crm)


def test_only_changed_verdicts_and_records_read_again_are_diffed(engine: Engine):
    ids, crm, first = first_writeback(engine)
    assert set(sent(crm)) == set(ids)  # no cursor yet: everything
    assert first.counts["not_rediffed"] == 0
    # the CRM now holds what was written; read back before the next writeback started
    sync_records(engine, {i: crm.data["Contact"][i] for i in ids}, synced_at=OLD)

    evaluate(engine, {ids[1]: evaluation(reason="a new reason")})
    calls = len(crm.write_calls)
    second = write(engine, crm)
    assert sent(crm, calls) == {ids[1]: {FIELDS["reason"]: "a new reason"}}
    assert second.counts["not_rediffed"] == 3

    # read again: the echo of the second writeback (ids[1]) is diffed once, and writes nothing
    ingest(engine, {i: crm.data["Contact"][i] for i in ids})
    calls = len(crm.write_calls)
    echo = write(engine, crm)
    assert sent(crm, calls) == {}
    assert echo.counts["not_rediffed"] == 3
    # read again unchanged (an overlap re-read): nothing is diffed
    ingest(engine, {i: crm.data["Contact"][i] for i in ids})
    again = write(engine, crm)
    assert sent(crm, calls) == {}
    assert again.counts["not_rediffed"] == 4

    # an admin edited a field the service owns: the ingest marks it, and it is diffed again
    edited = dict(crm.data["Contact"][ids[2]]) | {FIELDS["reason"]: "typed by hand"}
    crm.data["Contact"][ids[2]] = edited
    ingest(engine, {ids[2]: edited})
    calls = len(crm.write_calls)
    write(engine, crm)
    assert sent(crm, calls) == {ids[2]: {FIELDS["reason"]: "opted in, promoter"}}

    # and a full diff now finds nothing the incremental ones missed
    sync_records(engine, {i: crm.data["Contact"][i] for i in ids})
    calls = len(crm.write_calls)
    full = write(engine, crm, incremental=False)
    assert sent(crm, calls) == {}
    assert full.counts["unchanged"] == 4


def test_nothing_changed_means_nothing_diffed_and_no_call(engine: Engine):
    ids = [f"003{i:015d}" for i in range(3)]
    sync_records(engine, {i: blank() for i in ids}, synced_at=OLD)
    evaluate(engine, {i: evaluation() for i in ids})
    crm = FakeCRM()
    write(engine, crm)
    calls = crm.calls
    report = write(engine, crm)
    assert crm.calls == calls
    assert report.counts["not_rediffed"] == 3


def test_the_echo_of_our_own_write_is_not_diffed_again_but_a_hand_edit_is(engine: Engine):
    ids, crm, _ = first_writeback(engine)
    # read back whole (the fake keeps only the fields written), in the CRM's own forms: a
    # number as 82.0
    echo = {i: blank() | crm.data["Contact"][i] for i in ids}
    for values in echo.values():
        for field, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[field] = float(value)
    ingest(engine, echo, object_name="Contact")
    calls = len(crm.write_calls)
    quiet = write(engine, crm)
    assert sent(crm, calls) == {}
    assert quiet.counts["not_rediffed"] == 4  # the echo cost no diff

    edited = dict(echo[ids[2]]) | {FIELDS["reason"]: "typed by hand"}
    crm.data["Contact"][ids[2]] = edited
    ingest(engine, {ids[2]: edited}, object_name="Contact")
    calls = len(crm.write_calls)
    again = write(engine, crm)
    assert sent(crm, calls) == {ids[2]: {FIELDS["reason"]: "opted in, promoter"}}
    assert again.counts["not_rediffed"] == 3
