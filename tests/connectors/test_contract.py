"""One contract, every connector: the same suite runs over Salesforce and Gainsight.

Each connector is built the way the service builds it (settings from the environment ->
:func:`sync_service.factory.build_connector`) and talks over HTTPS to the local sandbox with its
real client. The contract (:mod:`connectors.base`):

* a declared stream yields every live record as a plain dict carrying its primary key;
* each batch carries a cursor, and a read from the last cursor returns what changed since
  (closed lower bound: boundary duplicates are allowed, changes are never lost);
* a batch write returns one result per record, each with its record id: a refused record is
  data, not an exception, and does not fail the others.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from canonical.model import System
from connectors.base import Batch, Connector, Cursor, RecordChange, StreamSpec
from sandbox import Sandbox
from sync_service.factory import build_connector
from sync_service.settings import load_settings


@dataclass(frozen=True)
class Case:
    """What the contract needs to know of one connector and its sandbox objects."""

    system: System
    spec: StreamSpec
    #: A field the write sets, and the value it sets.
    write_field: str
    write_value: Any
    #: A well-formed id that names no record.
    missing_id: str


CASES = {
    System.SALESFORCE: Case(
        System.SALESFORCE,
        StreamSpec(
            name="contacts",
            object_name="Contact",
            fields=("FirstName", "LastName", "AccountId"),
            primary_key="Id",
            replication_key="SystemModstamp",
        ),
        write_field="Advocate_Status__c",
        write_value="Eligible",
        missing_id="003000000000000XYZ",
    ),
    System.GAINSIGHT: Case(
        System.GAINSIGHT,
        StreamSpec(
            name="accounts",
            object_name="Company",
            fields=("Name", "SfdcAccountId"),
            primary_key="Gsid",
            replication_key="ModifiedDate",
        ),
        write_field="Advocate_Status__gc",
        write_value="Eligible",
        missing_id="1C-NOT-A-COMPANY",
    ),
}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(accounts=12, seed=11) as sandbox:
        yield sandbox


@pytest.fixture(params=list(CASES), ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture
def connector(sb: Sandbox, case: Case) -> Iterator[Connector]:
    sb.faults.reset()
    settings = load_settings(None, sb.env("client_credentials"))
    conn = build_connector(settings, case.system, writes_enabled=True)
    assert conn.system == case.system
    yield conn
    conn.close()


def _read(conn: Connector, spec: StreamSpec, since: Cursor | None) -> list[Batch]:
    return list(conn.stream(spec).read(since, dt.datetime.now(dt.UTC)))


def _live_ids(sb: Sandbox, case: Case) -> set[str]:
    return {str(r[case.spec.primary_key]) for r in sb.records(case.spec.object_name)}


def test_a_declared_stream_yields_every_live_record_with_its_primary_key(
    sb: Sandbox, case: Case, connector: Connector
) -> None:
    records = [r for b in _read(connector, case.spec, None) for r in b.records]
    assert records
    assert all(isinstance(r, dict) and r.get(case.spec.primary_key) for r in records)
    assert {str(r[case.spec.primary_key]) for r in records} == _live_ids(sb, case)


def test_a_read_resumed_from_the_last_cursor_returns_what_changed_since(
    sb: Sandbox, case: Case, connector: Connector
) -> None:
    first = _read(connector, case.spec, None)
    cursor = first[-1].cursor
    assert cursor is not None
    total = sum(len(b.records) for b in first)
    changed = sorted(_live_ids(sb, case))[0]
    time.sleep(0.01)  # the change is stamped after the cursor
    sb.update(case.spec.object_name, changed, {case.write_field: case.write_value})
    again = [r for b in _read(connector, case.spec, cursor) for r in b.records]
    ids = {str(r[case.spec.primary_key]) for r in again}
    assert changed in ids
    assert len(again) < total  # resumed, not read again from the start


def test_a_batch_write_returns_one_result_per_record(
    sb: Sandbox, case: Case, connector: Connector
) -> None:
    ids = sorted(_live_ids(sb, case))[:2]
    changes = [RecordChange(i, {case.write_field: case.write_value}) for i in ids]
    changes.append(RecordChange(case.missing_id, {case.write_field: case.write_value}))
    results = connector.write(case.spec.object_name, changes)
    assert len(results) == len(changes)
    verdicts = {r.record_id: r.success for r in results}
    assert verdicts == {ids[0]: True, ids[1]: True, case.missing_id: False}
    refused = next(r for r in results if not r.success)
    assert refused.code
    for i in ids:
        record = sb.record(case.spec.object_name, i)
        assert record is not None
        assert record[case.write_field] == case.write_value
