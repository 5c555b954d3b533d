"""The cyclic collector runs less often during a sync (a speed path), and is put back after."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from canonical.speed_paths import SPEED_PATHS_OFF
from connectors.memory import MemoryConnector
from sync_service.ops.runs import run_record
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import contacts
from sync_service.sync.gc_pause import SYNC_GEN0_THRESHOLD, fewer_collections
from sync_service.sync.ingest import IngestOptions, sync_source
from tests.fakes import FakeContactMapping

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_the_youngest_threshold_is_raised_within_and_restored_after() -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (SYNC_GEN0_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_an_error() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("stream failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_collector_switched_off_stays_off() -> None:
    gc.set_threshold(0, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)


def test_overlapping_syncs_restore_what_the_first_one_found() -> None:
    gc.set_threshold(700, 10, 10)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def second() -> None:
        first_in.wait()
        with fewer_collections():
            second_in.set()
            first_out.wait()
            seen.append(gc.get_threshold())  # the first left: still raised for this one

    worker = threading.Thread(target=second)
    worker.start()
    with fewer_collections():
        first_in.set()
        second_in.wait()
    first_out.set()
    worker.join()
    assert seen == [(SYNC_GEN0_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


def test_switched_off_the_thresholds_are_left_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections(enabled=False):
        assert gc.get_threshold() == (700, 10, 10)
    monkeypatch.setenv(SPEED_PATHS_OFF, "gc_threshold")
    with fewer_collections():
        assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_sync_stores_the_same_rows_with_and_without_the_raised_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # twin test: the speed path changes when the collector runs, never what is stored
    records = [
        {
            "Id": f"003{i:015d}",
            "AccountId": f"001{i % 7}",
            "FirstName": f"n{i}",
            "SystemModstamp": T0 + timedelta(seconds=i),
        }
        for i in range(2_000)
    ]
    stored = []
    for off in ("", "gc_threshold"):
        monkeypatch.setenv(SPEED_PATHS_OFF, off)
        engine = make_engine(f"sqlite:///{tmp_path / f'store{off}.db'}")
        upgrade(engine)
        crm = MemoryConnector(records={"Contact": [dict(r) for r in records]}, batch_size=300)
        with run_record(engine, "salesforce") as run:
            opts = IngestOptions(overlap=timedelta(seconds=0), now=NOW, full=False)
            sync_source(engine, crm, [FakeContactMapping()], run, opts)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(contacts).order_by(contacts.c.id)).mappings().all()
            stored.append([{k: v for k, v in r.items() if k != "synced_at"} for r in rows])
        engine.dispose()
    assert len(stored[0]) == 2_000
    assert stored[0] == stored[1]
