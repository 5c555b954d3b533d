"""Bad Salesforce records, read over recorded HTTP, go to quarantine; the batch goes on."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import responses
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from connectors.salesforce import SalesforceConnector
from sync_service.mapping import load_mappings
from sync_service.ops.runs import run_record
from sync_service.store.models import quarantine, tickets
from sync_service.sync.ingest import IngestOptions, read_cursor, sync_source
from tests.connectors.salesforce.sf_fakes import API, describe_response, token_response

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
QUERY_ALL = f"{API}/queryAll/"

CASE_FIELDS: list[dict[str, Any]] = [
    {"name": "Id", "type": "id"},
    {"name": "IsDeleted", "type": "boolean"},
    {"name": "MasterRecordId", "type": "reference", "referenceTo": ["Case"]},
    {"name": "AccountId", "type": "reference", "referenceTo": ["Account"]},
    {
        "name": "Priority",
        "type": "picklist",
        "picklistValues": [{"value": v, "active": True} for v in ("High", "Medium", "Low")],
    },
    {"name": "CreatedDate", "type": "datetime"},
    {"name": "SystemModstamp", "type": "datetime"},
]


def _case(case_id: str | None, minute: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "attributes": {"type": "Case", "url": f"/services/data/v62.0/sobjects/Case/{case_id}"},
        "Id": case_id,
        "SystemModstamp": f"2026-11-20T10:{minute:02d}:00.000+0000",
        "AccountId": "001000000000001AAA",
        "Priority": "High",
        "CreatedDate": "2026-11-01T09:00:00.000+0000",
        "IsDeleted": False,
        "MasterRecordId": None,
    }
    row.update(over)
    return row


def _mappings(tmp_path: Path) -> Any:
    (tmp_path / "salesforce.yaml").write_text(
        textwrap.dedent(
            """\
            version: 1
            entities:
              tickets:
                object: Case
                fields:
                  account_id: AccountId
                  priority: {from: Priority, map: {High: P1, Medium: P2, Low: P3}, strict: true}
                  opened_at: CreatedDate
            """
        ),
        encoding="utf-8",
    )
    sf = load_mappings(tmp_path).salesforce
    assert sf is not None
    return sf.entities[Entity.TICKET]


def test_bad_records_are_quarantined_with_their_reason_and_the_batch_goes_on(
    rsps: responses.RequestsMock, connector: SalesforceConnector, engine: Engine, tmp_path: Path
) -> None:
    good = ["500000000000001AAA", "500000000000005AAA"]
    page = [
        _case(good[0], 1),
        _case("500000000000002AAA", 2, Priority="Urgent"),  # unknown picklist value
        _case("500000000000003AAA", 3, CreatedDate="yesterday-ish"),  # unparseable date
        _case(None, 4),  # no id
        _case(good[1], 5, Priority="Low"),
    ]
    token_response(rsps)
    describe_response(rsps, "Case", CASE_FIELDS)
    rsps.get(QUERY_ALL, json={"done": True, "totalSize": len(page), "records": []})  # COUNT()
    rsps.get(QUERY_ALL, json={"done": True, "totalSize": len(page), "records": page})

    with run_record(engine, "salesforce") as run:
        opts = IngestOptions(overlap=timedelta(minutes=5), now=NOW)
        sync_source(engine, connector, [_mappings(tmp_path)], run, opts)

    assert run.status == "success", run.error
    assert run.counts["records.tickets"] == 2
    assert run.counts["quarantined.tickets"] == 3
    with engine.connect() as c:
        stored = dict(c.execute(sa.select(tickets.c.id, tickets.c.priority)).all())
        bad = sorted(
            (r.record_id or "", r.reason)
            for r in c.execute(sa.select(quarantine.c.record_id, quarantine.c.reason))
        )
        cursor = read_cursor(c, "salesforce", "tickets")
    # the records after the bad ones (same page, later batch) were stored
    assert stored == {good[0]: "P1", good[1]: "P3"}
    reasons = dict(bad)
    assert "'Urgent' is not in the value map of priority" in reasons["500000000000002AAA"]
    assert "'yesterday-ish' is not a valid datetime" in reasons["500000000000003AAA"]
    assert any("no id" in reason for _, reason in bad)
    assert len(bad) == 3
    # the watermark moved past the whole page: a bad record does not hold the stream back
    assert cursor is not None
    assert cursor.updated_at == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
