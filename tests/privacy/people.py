"""A person spread over every table of a test store, and a bystander who must not be touched."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.store.models import (
    evaluation_history,
    evaluations,
    quarantine,
    runs,
    writeback_log,
    writeback_outbox,
    writeback_state,
)
from tests.store_seed import seed

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SF_ID = "0035g00000Xy7QzAAJ"
GS_ID = "1P02ABCDEFGH0123456789"
EMAIL = "zebedee.quartermaine@example.org"
FIRST, LAST = "Zebedee", "Quartermaine"
COMMENT = "Loved the onboarding, ask me about Kubernetes pipelines"
OTHER_ID = "0035g00000Ot4erAAB"
OTHER_EMAIL = "olive.other@example.org"


def seed_person(engine: Engine) -> None:
    """Seed the person (contact, Gainsight person, answers, asks, service rows) and a bystander."""
    seed(
        engine,
        Entity.CONTACT,
        [
            {
                "id": SF_ID,
                "sf_contact_id": SF_ID,
                "account_id": "001A",
                "email": EMAIL,
                "first_name": FIRST,
                "last_name": LAST,
                "title": "VP Platform",
                "opted_in": True,
                "opted_out": False,
                "opt_in_date": date(2026, 1, 5),
                "opt_in_source": "webinar form",
                "extra": {"_crm": {"Advocate_Status__c": "Eligible"}, "nickname": "Zeb"},
            },
            {
                "source": "gainsight",
                "id": GS_ID,
                "sf_contact_id": SF_ID[:15],
                "email": EMAIL.upper(),
                "first_name": FIRST,
                "last_name": LAST,
            },
            {
                "id": OTHER_ID,
                "sf_contact_id": OTHER_ID,
                "account_id": "001A",
                "email": OTHER_EMAIL,
                "first_name": "Olive",
                "last_name": "Other",
            },
        ],
    )
    seed(
        engine,
        Entity.NPS_RESPONSE,
        [
            {
                "source": "gainsight",
                "id": "S1",
                "person_id": GS_ID,
                "email": EMAIL,
                "score": 10,
                "responded_at": NOW,
                "extra": {"comment": COMMENT},
            },
            {
                "source": "gainsight",
                "id": "S2",
                "email": EMAIL,
                "score": 9,
                "responded_at": NOW,
                "extra": {"comment": "again, " + COMMENT},
            },
            {
                "source": "gainsight",
                "id": "S3",
                "contact_id": OTHER_ID,
                "email": OTHER_EMAIL,
                "score": 3,
                "responded_at": NOW,
                "extra": {"comment": "meh"},
            },
        ],
    )
    seed(
        engine,
        Entity.ASK,
        [
            {
                "id": "a1",
                "contact_id": SF_ID,
                "account_id": "001A",
                "ask_type": "Reference Call",
                "team": "Sales",
                "requested_date": date(2026, 11, 1),
                "extra": {"notes": f"call {FIRST} on mobile"},
            }
        ],
    )
    with engine.begin() as conn:
        conn.execute(
            evaluations.insert(),
            [
                _verdict(SF_ID, "Eligible", f"NPS 10 from {FIRST}"),
                _verdict(OTHER_ID, "Not Eligible", "not opted in"),
            ],
        )
        conn.execute(
            evaluation_history.insert(),
            [
                {
                    "entity_type": "contact",
                    "entity_id": SF_ID,
                    "old_status": None,
                    "new_status": "Eligible",
                    "reason": "NPS 10 on 2026-12-01",
                    "changed_at": NOW,
                }
            ],
        )
        row: dict[str, Any] = {
            "target": "salesforce",
            "object_name": "Contact",
            "record_id": SF_ID,
            "fields": {"Advocate_Status__c": "Eligible"},
            "old_values": {"Advocate_Status__c": None},
            "state": "failed",
            "attempts": 1,
            "last_error": f"DUPLICATE_VALUE: {EMAIL} exists",
            "created_at": NOW,
            "updated_at": NOW,
        }
        conn.execute(writeback_outbox.insert(), [row])
        conn.execute(
            writeback_state.insert(),
            [
                {
                    "target": "salesforce",
                    "object_name": "Contact",
                    "record_id": SF_ID,
                    "field": "Advocate_Status__c",
                    "value": "Eligible",
                    "confirmed_at": NOW,
                },
                {
                    "target": "salesforce",
                    "object_name": "Contact",
                    "record_id": SF_ID,
                    "field": "Advocate_Reason__c",
                    "value": f"Promoter: {FIRST} gave NPS 10",
                    "confirmed_at": NOW,
                },
            ],
        )
        conn.execute(
            writeback_log.insert(),
            [
                {
                    "target": "salesforce",
                    "object_name": "Contact",
                    "record_id": SF_ID,
                    "field": "Advocate_Status__c",
                    "old_value": None,
                    "new_value": "Eligible",
                    "written_at": NOW,
                },
                {
                    "target": "salesforce",
                    "object_name": "Contact",
                    "record_id": SF_ID,
                    "field": "Advocate_Reason__c",
                    "old_value": None,
                    "new_value": f"Promoter: {FIRST} gave NPS 10",
                    "written_at": NOW,
                },
            ],
        )
        conn.execute(
            quarantine.insert(),
            [
                {
                    "connector": "salesforce",
                    "stream": "contacts",
                    "record_id": SF_ID,
                    "reason": f"bad date for {FIRST} {LAST}",
                    "payload": {"Id": SF_ID, "FirstName": FIRST, "LastName": LAST},
                    "created_at": NOW,
                },
                {
                    "connector": "gainsight",
                    "stream": "nps_responses",
                    "record_id": "S9",
                    "reason": "NPSScore missing",
                    "payload": {"Gsid": "S9", "PersonId": GS_ID, "Comments": COMMENT},
                    "created_at": NOW,
                },
            ],
        )
        conn.execute(
            runs.insert(),
            [
                {
                    "job": "gainsight",
                    "status": "failed",
                    "started_at": NOW,
                    "error": f"person {GS_ID} ({FIRST} {LAST}) rejected",
                    "config_errors": [f"mapping problem near {EMAIL}"],
                }
            ],
        )


def _verdict(contact_id: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "entity_type": "contact",
        "entity_id": contact_id,
        "status": status,
        "eligible": status == "Eligible",
        "score": 80.0,
        "reason": reason,
        "details": {"rules": {"promoter": True}},
        "evaluated_at": NOW,
    }


def text_of_every_row(engine: Engine) -> dict[str, list[str]]:
    """Every table's rows, each as one text (all columns, JSON included), for searching."""
    out: dict[str, list[str]] = {}
    meta = sa.MetaData()
    with warnings.catch_warnings():
        # SQLite cannot reflect expression indexes (the e-mail keys); only the columns matter
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = conn.execute(sa.select(*[sa.cast(c, sa.Text()) for c in table.c])).all()
            out[table.name] = [" | ".join("" if v is None else str(v) for v in r) for r in rows]
    return out


PERSONAL = (EMAIL, FIRST, LAST, COMMENT, "webinar form", "VP Platform", "Zeb", "Kubernetes")
