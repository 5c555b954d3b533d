"""Ingest watermark rules, with fake streams: rows and cursor commit together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import BudgetExhaustedError, FatalApiError
from connectors.base import DELETED_KEY, Cursor
from connectors.memory import MemoryConnector
from sync_service.ops.runs import PEAK_MEMORY, run_record
from sync_service.store.initial_load import missing_indexes
from sync_service.store.models import contacts, quarantine, runs, sync_state
from sync_service.sync.ingest import (
    IngestOptions,
    read_cursor,
    reconcile_stream,
    sync_source,
    sync_stream,
)
from tests.fakes import FakeContactMapping

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def rec(i: int, minutes: int, **extra: object) -> dict[str, object]:
    return {
        "Id": f"003{i:015d}",
        "AccountId": "001A",
        "FirstName": f"n{i}",
        "SystemModstamp": T0 + timedelta(minutes=minutes),
        **extra,
    }


def opts(now: datetime = NOW, overlap: int = 300, full: bool = False) -> IngestOptions:
    return IngestOptions(overlap=timedelta(seconds=overlap), now=now, full=full)


def stored(engine: Engine) -> dict[str, dict[str, object]]:
    with engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(sa.select(contacts)).mappings()}


def cursor(engine: Engine) -> Cursor | None:
    with engine.connect() as conn:
        return read_cursor(conn, "salesforce", "contacts")


def sync(engine: Engine, crm: MemoryConnector, o: IngestOptions | None = None) -> None:
    with run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [FakeContactMapping()], run, o or opts())


def test_first_sync_reads_everything_and_saves_the_last_cursor(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(7)]})
    sync(engine, crm)
    assert len(stored(engine)) == 7
    assert cursor(engine) == Cursor(T0 + timedelta(minutes=6), f"003{6:015d}")
    assert crm.reads[0][1] is None


def test_next_run_starts_before_the_watermark_by_the_overlap(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(4)]})
    # read right after the last change: rows stamped up to 2 minutes before may still commit
    sync(engine, crm, opts(now=T0 + timedelta(minutes=4)))
    sync(engine, crm, opts(now=T0 + timedelta(minutes=30), overlap=120))
    since = crm.reads[-1][1]
    # the read ended at minute 4: rows stamped after minute 2 may have committed since
    assert since == Cursor(T0 + timedelta(minutes=4) - timedelta(seconds=120), "")


def test_after_a_quiet_spell_the_next_run_starts_at_the_watermark(engine: Engine):
    """The last read ended long after the watermark: nothing stamped before it can still land."""
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(4)]})
    sync(engine, crm, opts(now=T0 + timedelta(hours=2), overlap=300))
    sync(engine, crm, opts(now=T0 + timedelta(hours=3), overlap=300))
    assert crm.reads[-1][1] == Cursor(T0 + timedelta(minutes=3), "")


def test_a_read_that_ended_inside_the_overlap_reaches_back_to_it(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(4)]})
    sync(engine, crm, opts(now=T0 + timedelta(minutes=5), overlap=300))
    sync(engine, crm, opts(now=T0 + timedelta(hours=1), overlap=300))
    # the first read ended at minute 5: rows stamped after minute 0 may have committed since
    assert crm.reads[-1][1] == Cursor(T0, "")


def test_a_killed_read_keeps_the_whole_overlap(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(10)]}, batch_size=3)
    sync(engine, crm, opts(now=T0 + timedelta(hours=1)))
    crm.records["Contact"] += [rec(i, 60 + i) for i in range(10, 16)]  # minutes 70-75
    crm.fail_after_batches = 1
    with pytest.raises(RuntimeError), run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [FakeContactMapping()], run, opts(now=T0 + timedelta(hours=2)))
    crm.fail_after_batches = None
    sync(engine, crm, opts(now=T0 + timedelta(hours=3), overlap=300))
    # the killed read finished nothing: its cursor is trusted only with the full overlap
    assert crm.reads[-1][1] == Cursor(T0 + timedelta(minutes=71) - timedelta(seconds=300), "")


def test_records_equal_to_watermark_are_not_lost(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(1, 10)]})
    sync(engine, crm, opts(overlap=0))
    # Another record committed later with the same timestamp and a smaller id.
    crm.records["Contact"].append(rec(0, 10))
    sync(engine, crm, opts(overlap=0))
    assert f"003{0:015d}" in stored(engine)


def test_rows_committed_late_just_below_the_watermark_are_read_in_the_overlap(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(1, 10)]})
    sync(engine, crm, opts(now=T0 + timedelta(minutes=11)))
    crm.records["Contact"].append(rec(2, 8))  # 2 minutes before the watermark, seen late
    sync(engine, crm, opts(now=T0 + timedelta(minutes=40), overlap=300))
    assert f"003{2:015d}" in stored(engine)


def test_watermark_never_passes_the_run_start(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(1, 10), rec(2, 60 * 24 * 30)]})
    sync(engine, crm, opts(now=T0 + timedelta(hours=1)))
    assert set(stored(engine)) == {f"003{1:015d}"}
    assert cursor(engine) == Cursor(T0 + timedelta(minutes=10), f"003{1:015d}")


def test_crash_mid_stream_keeps_committed_batches_and_resumes_without_gaps(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(10)]}, batch_size=3)
    crm.fail_after_batches = 2
    with pytest.raises(RuntimeError), run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [FakeContactMapping()], run, opts())
    assert len(stored(engine)) == 6
    assert cursor(engine) == Cursor(T0 + timedelta(minutes=5), f"003{5:015d}")
    crm.fail_after_batches = None
    sync(engine, crm)
    assert sorted(stored(engine)) == sorted(r["Id"] for r in crm.records["Contact"])


def test_watermark_advances_only_after_its_rows_commit(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(3)]})
    from sync_service.store.upsert import PreparedUpsert

    def failing_upsert(*args: object, **kwargs: object) -> int:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(PreparedUpsert, "execute", failing_upsert)
    with pytest.raises(sa.exc.OperationalError), run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [FakeContactMapping()], run, opts())
    assert cursor(engine) is None


def test_bad_record_is_quarantined_and_the_batch_goes_on(engine: Engine):
    crm = MemoryConnector(
        records={
            "Contact": [rec(1, 1), rec(2, 2, FirstName="BAD", Email="Ada@Example.com"), rec(3, 3)]
        }
    )
    sync(engine, crm)
    assert set(stored(engine)) == {f"003{1:015d}", f"003{3:015d}"}
    with engine.connect() as conn:
        [q] = conn.execute(sa.select(quarantine)).mappings().all()
        [r] = conn.execute(sa.select(runs)).mappings().all()
    assert q["record_id"] == f"003{2:015d}"
    assert q["reason"] == "FirstName: not a name"
    assert q["payload"]["Email"].startswith("<email:")
    assert "example.com" not in str(q["payload"]).lower()
    assert r["counts"] == {"records.contacts": 2, "quarantined.contacts": 1} | {
        PEAK_MEMORY: r["counts"][PEAK_MEMORY]
    }


def test_a_record_read_again_is_quarantined_once_and_released_when_fixed(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(2, 2, FirstName="BAD")]})
    sync(engine, crm)
    sync(engine, crm, opts(full=True))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar() == 1
    crm.records["Contact"] = [rec(2, 5, FirstName="Good")]
    sync(engine, crm)
    with engine.connect() as conn:
        [q] = conn.execute(sa.select(quarantine)).mappings().all()
    assert q["resolved"] is True
    assert stored(engine)[f"003{2:015d}"]["first_name"] == "Good"


def test_deleted_record_is_suppressed_not_removed(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(1, 1)]})
    sync(engine, crm)
    crm.records["Contact"] = [rec(1, 9, **{DELETED_KEY: True})]
    sync(engine, crm)
    row = stored(engine)[f"003{1:015d}"]
    assert row["deleted"] is True
    assert row["first_name"] == "n1"


def test_budget_stop_ends_the_run_partial_with_committed_work_kept(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(9)]}, batch_size=3)
    crm.fail_after_batches = 1
    crm.failure = BudgetExhaustedError("daily API budget share reached", system="salesforce")
    sync(engine, crm)
    with engine.connect() as conn:
        [r] = conn.execute(sa.select(runs)).mappings().all()
    assert r["status"] == "partial"
    assert "budget" in r["error"]
    assert len(stored(engine)) == 3
    assert cursor(engine) is not None


def test_a_stream_rejected_by_the_crm_fails_alone(engine: Engine):
    class Broken(FakeContactMapping):
        def stream_spec(self):  # type: ignore[no-untyped-def]
            spec = super().stream_spec()
            return type(spec)(name="other", object_name="Nope", fields=spec.fields)

    crm = MemoryConnector(records={"Contact": [rec(1, 1)]})

    def stream(spec):  # type: ignore[no-untyped-def]
        if spec.object_name == "Nope":
            raise FatalApiError(
                "INVALID_TYPE: sObject type 'Nope' is not supported", code="INVALID_TYPE"
            )
        return MemoryConnector.stream(crm, spec)

    crm.stream = stream  # type: ignore[method-assign]
    with run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [Broken(), FakeContactMapping()], run, opts())
    assert run.status == "failed"
    assert "INVALID_TYPE" in (run.error or "")
    assert len(stored(engine)) == 1


def test_stop_event_ends_after_the_current_batch(engine: Engine):
    import threading

    stop = threading.Event()
    stop.set()
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(9)]}, batch_size=3)
    with run_record(engine, "salesforce") as run:
        assert sync_stream(engine, crm, FakeContactMapping(), run, opts(), stop) is False
    assert len(stored(engine)) == 3


def test_full_sync_does_not_move_the_cursor_back(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(6)]}, batch_size=2)
    sync(engine, crm)
    before = cursor(engine)
    crm.fail_after_batches = 1
    with pytest.raises(RuntimeError), run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [FakeContactMapping()], run, opts(full=True))
    assert cursor(engine) == before


def test_reconcile_marks_hard_deleted_rows_and_refreshes_the_rest(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(5)]}, batch_size=2)
    sync(engine, crm)
    before = cursor(engine)
    crm.records["Contact"] = [rec(i, i, FirstName=f"formula{i}") for i in range(5) if i != 2]
    with run_record(engine, "reconcile") as run:
        assert reconcile_stream(engine, crm, FakeContactMapping(), run, opts())
    rows = stored(engine)
    assert rows[f"003{2:015d}"]["deleted"] is True
    assert rows[f"003{3:015d}"]["first_name"] == "formula3"
    assert not rows[f"003{3:015d}"]["deleted"]
    assert run.counts["reconcile.hard_deleted.contacts"] == 1
    assert cursor(engine) == before
    with engine.connect() as conn:
        state = conn.execute(sa.select(sync_state)).mappings().one()
    assert state["last_reconciled_at"] == NOW


def test_a_stream_whose_mapping_changed_is_read_again_in_full(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(4)]})
    sync(engine, crm)
    sync(engine, crm)
    assert crm.reads[-1][1] is not None  # unchanged mapping: incremental

    class MoreFields(FakeContactMapping):
        def stream_spec(self):  # type: ignore[no-untyped-def]
            spec = super().stream_spec()
            return type(spec)(
                name=spec.name, object_name=spec.object_name, fields=(*spec.fields, "Title")
            )

    with run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [MoreFields()], run, opts())
    assert crm.reads[-1][1] is None
    assert run.counts["remapped.contacts"] == 1
    with run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [MoreFields()], run, opts())
    assert crm.reads[-1][1] is not None


def _missing_indexes_when_read(engine: Engine, crm: MemoryConnector) -> list[list[str]]:
    """Spy: the contacts indexes missing each time a stream starts to read."""
    seen: list[list[str]] = []
    original = crm.stream

    def stream(spec):  # type: ignore[no-untyped-def]
        inner = original(spec)
        read = inner.read

        def spying_read(since, until):  # type: ignore[no-untyped-def]
            for i, batch in enumerate(read(since, until)):
                if i == 0:
                    with engine.connect() as conn:
                        seen.append(missing_indexes(conn, contacts))
                yield batch

        inner.read = spying_read  # type: ignore[method-assign]
        return inner

    crm.stream = stream  # type: ignore[method-assign]
    return seen


def test_a_first_load_builds_the_indexes_once_at_the_end(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(7)]})
    seen = _missing_indexes_when_read(engine, crm)
    sync(engine, crm)
    assert seen == [sorted(str(ix.name) for ix in contacts.indexes)]
    with engine.connect() as conn:
        assert missing_indexes(conn, contacts) == []
    # The next (incremental) run writes with its indexes in place.
    crm.records["Contact"].append(rec(7, 60))
    sync(engine, crm)
    assert seen[-1] == []
    assert len(stored(engine)) == 8


def test_indexes_left_out_by_a_killed_first_load_are_back_before_the_next_read(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(4)]})
    sync(engine, crm)
    with engine.begin() as conn:  # what kill -9 during a first load leaves behind
        for ix in contacts.indexes:
            ix.drop(conn)
    seen = _missing_indexes_when_read(engine, crm)
    sync(engine, crm)
    assert seen == [[]]


def test_batches_that_do_not_move_the_cursor_share_a_transaction(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    import sync_service.sync.ingest as ingest

    monkeypatch.setattr(ingest, "SHARED_COMMIT_ROWS", 6)
    crm = MemoryConnector(
        records={"Contact": [rec(i, i) for i in range(10)]}, batch_size=2, cursor_at_end_only=True
    )
    crm.fail_after_batches = 4  # the 5th and last batch, which moves the cursor, never comes
    with pytest.raises(RuntimeError), run_record(engine, "salesforce") as run:
        sync_source(engine, crm, [FakeContactMapping()], run, opts())
    # Batches 1-3 filled a shared transaction (6 records) and committed; batch 4 was lost with
    # the failure; the cursor never moved, so the next run reads them all again.
    assert len(stored(engine)) == 6
    assert run.counts == {"records.contacts": 6, PEAK_MEMORY: run.counts[PEAK_MEMORY]}
    assert cursor(engine) is None
    crm.fail_after_batches = None
    sync(engine, crm)
    assert len(stored(engine)) == 10
    assert cursor(engine) == Cursor(T0 + timedelta(minutes=9), f"003{9:015d}")


def test_a_stop_commits_the_shared_transaction_before_it_returns(engine: Engine):
    import threading

    stop = threading.Event()
    stop.set()
    crm = MemoryConnector(
        records={"Contact": [rec(i, i) for i in range(9)]}, batch_size=3, cursor_at_end_only=True
    )
    with run_record(engine, "salesforce") as run:
        assert sync_stream(engine, crm, FakeContactMapping(), run, opts(), stop) is False
    assert len(stored(engine)) == 3
    assert run.counts == {"records.contacts": 3, PEAK_MEMORY: run.counts[PEAK_MEMORY]}
