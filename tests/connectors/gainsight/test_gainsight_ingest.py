"""Malformed Gainsight rows go through the real mapping and ingest into quarantine, not away."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import responses
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.mapping import load_mappings
from sync_service.ops.runs import run_record
from sync_service.store.models import accounts, nps_responses, quarantine
from sync_service.sync.ingest import IngestOptions, sync_source
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


@responses.activate
def test_dates_answered_in_epoch_milliseconds_land_as_dates(engine: Engine) -> None:
    # Gainsight's Read API answers Date and DateTime values in epoch milliseconds (Custom
    # Object API, Read API sample response); the mapping must store them as real dates.
    t = datetime(2026, 11, 1, 8, 30, 15, 250_000, tzinfo=UTC)
    responses.post(
        f"{BASE}/v1/data/objects/query/Company",
        json=envelope(
            {
                "records": [
                    {
                        "Gsid": "G1",
                        "ModifiedDate": ms(t),
                        "Name": "Acme",
                        "OriginalContractDate": ms(datetime(2021, 3, 15, tzinfo=UTC)),
                    }
                ]
            }
        ),
    )
    responses.post(
        f"{BASE}/v1/data/objects/query/SurveyUserAnswer",
        json=envelope(
            {
                "records": [
                    {
                        "Gsid": "A1",
                        "ModifiedDate": ms(t),
                        "NPSScore": 9,
                        "ResponseDate": ms(t),
                        "ParticipantEmail": "X@Example.com",
                    }
                ]
            }
        ),
    )
    gs = load_mappings(MAPPINGS).gainsight
    assert gs is not None
    conn, _ = make_connector(page_size=100)
    with run_record(engine, "gainsight") as run:
        opts = IngestOptions(overlap=timedelta(minutes=5), now=datetime(2026, 11, 23, tzinfo=UTC))
        sync_source(
            engine,
            conn,
            [gs.entities[Entity.ACCOUNT], gs.entities[Entity.NPS_RESPONSE]],
            run,
            opts,
        )
    with engine.connect() as c:
        since = c.execute(sa.select(accounts.c.customer_since)).scalar_one()
        responded = c.execute(sa.select(nps_responses.c.responded_at)).scalar_one()
        bad = c.execute(sa.select(quarantine.c.reason)).scalars().all()
    assert bad == []
    assert since == date(2021, 3, 15)
    assert responded.replace(tzinfo=UTC) == t.replace(microsecond=250_000)
