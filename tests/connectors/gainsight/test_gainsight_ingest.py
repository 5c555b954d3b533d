"""Malformed Gainsight rows go through the real mapping and ingest into quarantine, not away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import responses
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.ingest import IngestOptions, sync_source
from sync_service.mapping import load_mappings
from sync_service.runs import run_record
from sync_service.store.models import accounts, quarantine
from tests.connectors.gainsight.gainsight_fake import BASE, envelope, make_connector, ms

MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"


@responses.activate
def test_malformed_company_rows_are_quarantined_and_counted(engine: Engine) -> None:
    t = datetime(2026, 11, 1, tzinfo=UTC)
    page = [
        {"Gsid": "G1", "ModifiedDate": ms(t), "Name": "Acme", "SfdcAccountId": "001A"},
        "garbage",
        {"Gsid": "G2", "ModifiedDate": "not a date", "Name": "Bad date"},
        {"ModifiedDate": ms(t), "Name": "No id"},
        {"Gsid": "G3", "ModifiedDate": ms(t + timedelta(seconds=1)), "Name": "Beta"},
    ]
    responses.post(f"{BASE}/v1/data/objects/query/Company", json=envelope({"records": page}))
    gs = load_mappings(MAPPINGS).gainsight
    assert gs is not None
    conn, _ = make_connector(page_size=100)
    with run_record(engine, "gainsight") as run:
        opts = IngestOptions(overlap=timedelta(minutes=5), now=datetime(2026, 11, 23, tzinfo=UTC))
        sync_source(engine, conn, [gs.entities[Entity.ACCOUNT]], run, opts)
    with engine.connect() as c:
        stored = sorted(c.execute(sa.select(accounts.c.id)).scalars())
        bad = c.execute(sa.select(quarantine.c.record_id, quarantine.c.reason)).all()
    assert stored == ["G1", "G3"]
    assert len(bad) == 3
    assert {r.record_id for r in bad} >= {"G2"}
    assert run.counts["quarantined.accounts"] == 3
    assert run.counts["records.accounts"] == 2
