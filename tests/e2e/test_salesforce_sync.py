"""End to end: the real connector and ingest against the HTTPS sandbox and a real store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors.base import ApiUsage, Cursor
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from sandbox import Sandbox
from sync_service.mapping import load_mappings
from sync_service.ops.runs import Run, run_record
from sync_service.store.initial_load import missing_indexes
from sync_service.store.models import CANONICAL_TABLES, accounts, contacts
from sync_service.sync.ingest import IngestOptions, read_cursor, sync_source

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"


def _cred(sb: Sandbox, name: str) -> str:
    return sb.credentials[name]


def no_sleep(_seconds: float) -> None:
    """Retries and polls of these tests do not wait."""


def connector_for(
    sb: Sandbox, *, sleep: Callable[[float], None] = no_sleep, **overrides: Any
) -> SalesforceConnector:
    cfg = SalesforceConfig(
        login_url=sb.salesforce_url,
        auth_flow="client_credentials",
        client_id=_cred(sb, "client_id"),
        client_secret=_cred(sb, "client_secret"),
        ca_bundle=sb.ca_bundle,
        timeout_seconds=30,
        **overrides,
    )
    return SalesforceConnector(cfg, sleep=sleep)


def entities() -> list[Any]:
    mappings = load_mappings(MAPPINGS)
    assert mappings.salesforce is not None
    return list(mappings.salesforce.entities.values())


def sync(
    engine: Engine,
    sb: Sandbox,
    *,
    full: bool = False,
    sleep: Callable[[float], None] = no_sleep,
    **overrides: Any,
) -> tuple[Run, ApiUsage]:
    conn = connector_for(sb, sleep=sleep, **overrides)
    try:
        with run_record(engine, "salesforce") as run:
            opts = IngestOptions(overlap=timedelta(seconds=300), now=datetime.now(UTC), full=full)
            sync_source(engine, conn, entities(), run, opts)
        return run, conn.usage()
    finally:
        conn.close()


def stored(engine: Engine, table: sa.Table) -> dict[str, dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(sa.select(table).where(table.c.source == "salesforce")).mappings()
        return {r["id"]: dict(r) for r in rows}


def crm_ids(sb: Sandbox, obj: str, *, include_deleted: bool = False) -> set[str]:
    return {str(r["Id"]) for r in sb.records(obj, include_deleted=include_deleted)}


def live(rows: dict[str, dict[str, Any]]) -> set[str]:
    return {k for k, r in rows.items() if not r["deleted"]}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(accounts=15, seed=7) as sandbox:
        yield sandbox


@pytest.fixture
def waits() -> list[float]:
    """Retry and poll waits, recorded instead of slept (pass ``sleep=waits.append``)."""
    return []


def test_full_sync_copies_every_record_of_every_stream(engine: Engine, sb: Sandbox) -> None:
    run, usage = sync(engine, sb)
    assert run.status == "success", run.error
    rows = stored(engine, contacts)
    assert live(rows) == crm_ids(sb, "Contact")
    assert set(rows) == crm_ids(sb, "Contact", include_deleted=True)
    assert live(stored(engine, accounts)) == crm_ids(sb, "Account")
    assert usage.used is not None
    assert usage.limit == 100_000


@pytest.mark.parametrize(
    "name", ["accounts", "contacts", "tickets", "opportunities", "advocacy_asks"]
)
def test_stream_contract_keys_present_and_cursor_increasing(sb: Sandbox, name: str) -> None:
    [mapping] = [m for m in entities() if m.stream_spec().name == name]
    spec = mapping.stream_spec()
    conn = connector_for(sb, batch_size=7, bulk_query_threshold=10**9)
    conn.check_fields(spec)
    previous: Cursor | None = None
    n = 0
    for batch in conn.stream(spec).read(None, datetime.now(UTC)):
        assert all(r.get(spec.primary_key) for r in batch.records)
        assert batch.cursor is not None
        assert previous is None or batch.cursor > previous
        previous = batch.cursor
        n += len(batch.records)
    assert n == len(crm_ids(sb, spec.object_name, include_deleted=True))
    conn.close()


def test_bulk_and_rest_reads_store_the_same_rows(
    engine: Engine, sb: Sandbox, tmp_path: Path
) -> None:
    from sync_service.store.engine import make_engine, upgrade

    sync(engine, sb, bulk_query_threshold=0, bulk_page_size=7, batch_size=5)
    other = make_engine(f"sqlite:///{tmp_path / 'rest.db'}")
    upgrade(other)
    sync(other, sb, bulk_query_threshold=10**9)

    def comparable(eng: Engine) -> dict[str, dict[str, Any]]:
        return {
            k: {c: v for c, v in r.items() if c != "synced_at"}
            for k, r in stored(eng, contacts).items()
        }

    assert comparable(engine) == comparable(other)
    other.dispose()


def test_incremental_sync_picks_up_edits_and_deletes(engine: Engine, sb: Sandbox) -> None:
    sync(engine, sb)
    ids = sorted(crm_ids(sb, "Contact"))
    edited, deleted, loser = ids[0], ids[1], ids[2]
    sb.update("Contact", edited, {"LastName": "Renamed"})
    sb.delete("Contact", deleted)
    sb.merge("Contact", edited, loser)
    run, _ = sync(engine, sb)
    assert run.status == "success", run.error
    rows = stored(engine, contacts)
    assert rows[edited]["last_name"] == "Renamed"
    assert rows[deleted]["deleted"] is True
    assert rows[loser]["deleted"] is True
    assert rows[loser]["merged_into"] == edited
    assert run.counts.get("records.contacts", 0) < len(ids)  # incremental, not a full re-read


def test_sync_survives_a_20_percent_503_rate(
    engine: Engine, sb: Sandbox, waits: list[float]
) -> None:
    sb.faults.rate_503 = 0.2
    run, _ = sync(
        engine, sb, sleep=waits.append, max_attempts=10, batch_size=5, query_batch_size=200
    )
    assert run.status == "success", run.error
    assert waits  # faults were met and retried
    sb.faults.rate_503 = 0.0
    assert set(stored(engine, contacts)) == crm_ids(sb, "Contact", include_deleted=True)


def test_expired_tokens_are_renewed_mid_sync(engine: Engine, sb: Sandbox) -> None:
    sync(engine, sb)
    sb.faults.expire_tokens()
    run, usage = sync(engine, sb)
    assert run.status == "success", run.error
    assert usage.extra["token_renewals"] == 0  # a new connector logs in afresh
    conn = connector_for(sb)
    spec = entities()[0].stream_spec()
    conn.check_fields(spec)
    sb.faults.expire_tokens()
    assert list(conn.stream(spec).read(None, datetime.now(UTC)))
    assert conn.usage().extra["token_renewals"] == 1
    conn.close()


def test_budget_stop_ends_the_run_partial_and_resumes(engine: Engine, sb: Sandbox) -> None:
    sb.api_used = 79_990
    run, usage = sync(engine, sb, batch_size=5, query_batch_size=200, budget_share=0.8)
    assert run.status == "partial", (run.status, run.error)
    assert usage.used is not None
    assert usage.used >= 80_000
    sb.api_used = 0
    run, _ = sync(engine, sb)
    assert run.status == "success", run.error
    assert set(stored(engine, contacts)) == crm_ids(sb, "Contact", include_deleted=True)


_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from connectors.salesforce import SalesforceConfig, SalesforceConnector
    from sync_service.sync.ingest import IngestOptions, sync_source
    from sync_service.mapping import load_mappings
    from sync_service.ops.runs import run_record
    from sync_service.store.engine import make_engine

    import time
    from sync_service.store.upsert import PreparedUpsert

    # each batch of 3 rows takes a while to write, so that the parent catches the stream
    # between two batches whatever the speed of the machine
    real_execute = PreparedUpsert.execute
    def slow_execute(*args, **kwargs):
        time.sleep(0.02)
        return real_execute(*args, **kwargs)
    PreparedUpsert.execute = slow_execute

    url, ca, cid, secret, db, mappings = sys.argv[1:7]
    engine = make_engine(db)
    cfg = SalesforceConfig(login_url=url, auth_flow="client_credentials", client_id=cid,
                           client_secret=secret, ca_bundle=ca, batch_size=3,
                           query_batch_size=200, bulk_query_threshold=10**9)
    entities = list(load_mappings(Path(mappings)).salesforce.entities.values())
    with run_record(engine, "salesforce") as run:
        opts = IngestOptions(overlap=timedelta(seconds=300), now=datetime.now(UTC))
        sync_source(engine, SalesforceConnector(cfg), entities, run, opts)
    """
)


def test_process_killed_mid_sync_resumes_with_nothing_lost_or_duplicated(
    engine: Engine, db_url: str, sb: Sandbox
) -> None:
    sb.faults.latency = 0.05  # slow enough to be caught mid-stream
    args = [
        sb.salesforce_url,
        str(sb.ca_bundle),
        _cred(sb, "client_id"),
        _cred(sb, "client_secret"),
        db_url,
        str(MAPPINGS),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, *args], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            with engine.connect() as c:
                if read_cursor(c, "salesforce", "contacts") is not None:
                    break
            assert proc.poll() is None, "the sync finished before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    partial = len(stored(engine, contacts))
    assert 0 < partial < len(crm_ids(sb, "Contact", include_deleted=True))
    with engine.connect() as c:  # killed mid first load: its indexes were to be built at the end
        assert missing_indexes(c, contacts)

    sb.faults.latency = 0.0
    run, _ = sync(engine, sb)
    assert run.status == "success", run.error
    with engine.connect() as c:
        n_rows = c.execute(
            sa.select(sa.func.count())
            .select_from(contacts)
            .where(contacts.c.source == "salesforce")
        ).scalar_one()
    assert set(stored(engine, contacts)) == crm_ids(sb, "Contact", include_deleted=True)
    assert n_rows == len(crm_ids(sb, "Contact", include_deleted=True))
    with engine.connect() as c:
        assert all(missing_indexes(c, t) == [] for t in CANONICAL_TABLES.values())


def test_bad_record_is_quarantined_and_the_rest_of_the_batch_goes_on(
    engine: Engine, sb: Sandbox
) -> None:
    from sync_service.store.models import advocacy_asks, quarantine

    asks = sorted(crm_ids(sb, "Reference_Request__c"))
    bad = asks[0]
    sb.update("Reference_Request__c", bad, {"Requested_Date__c": None})  # required by the mapping
    run, _ = sync(engine, sb, batch_size=50)
    assert run.counts.get("quarantined.advocacy_asks") == 1
    assert set(stored(engine, advocacy_asks)) == (
        crm_ids(sb, "Reference_Request__c", include_deleted=True) - {bad}
    )
    with engine.connect() as c:
        [entry] = c.execute(sa.select(quarantine)).mappings().all()
    assert entry["record_id"] == bad
    assert "Requested_Date__c" in entry["reason"] or "requested_date" in entry["reason"]
