"""Tombstones at the ingest: an erased person's records are stored stripped, batch by batch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from connectors.memory import MemoryConnector
from sync_service.ops.runs import run_record
from sync_service.privacy.forget import forget
from sync_service.privacy.keys import KeyedHasher
from sync_service.privacy.tombstones import Scrubber, Tombstones, load_scrubber, tombstone_rows
from sync_service.settings import PrivacySettings
from sync_service.store.models import contacts, privacy_tombstones, quarantine
from sync_service.sync.ingest import IngestOptions, sync_source
from tests.fakes import FakeContactMapping
from tests.privacy.people import EMAIL, NOW, SF_ID

KEY = b"k" * 32
HASHER = KeyedHasher(KEY)


def scrubber(**kw: Any) -> Scrubber:
    marks = tombstone_rows(
        HASHER, ids=[SF_ID], emails=[EMAIL], contact_id=SF_ID, erasure_id=1, now=NOW
    )
    return Scrubber(Tombstones(HASHER, {m["digest"]: m["contact_id"] for m in marks}), NOW, **kw)


def contact(cid: str, email: str, **kw: Any) -> dict[str, Any]:
    return {
        "source": "salesforce",
        "id": cid,
        "sf_contact_id": cid,
        "email": email,
        "first_name": "Zebedee",
        "opted_in": True,
        "extra": {"_crm": {"Advocate_Status__c": "Eligible"}, "nickname": "Zeb"},
        **kw,
    }


def test_a_tombstoned_contact_is_stripped_and_opted_out_and_others_pass():
    rows = [contact(SF_ID[:15], "x@y.io"), contact("003OTHER0000000AAA", "o@y.io")]
    assert scrubber()(Entity.CONTACT, rows, []) == []  # known by id: no new tombstone
    erased, other = rows
    assert (erased["email"], erased["first_name"], erased["opted_out"]) == (None, None, True)
    assert erased["extra"] == {"_crm": {"Advocate_Status__c": "Eligible"}, "_erased": True}
    assert other["email"] == "o@y.io"
    assert other["first_name"] == "Zebedee"


def test_a_duplicate_found_by_email_is_stripped_and_its_id_tombstoned():
    rows = [contact("003DUPLICATE00AAAA", " " + EMAIL.upper())]
    new = scrubber()(Entity.CONTACT, rows, [])
    assert rows[0]["email"] is None
    assert [m["digest"] for m in new] == [HASHER.of_id("003DUPLICATE00AAAA")]
    assert new[0]["contact_id"] == SF_ID


def test_a_new_answer_named_by_email_only_is_stripped_and_linked_to_the_person():
    rows = [
        {"source": "gainsight", "id": "S7", "email": EMAIL, "score": 9, "extra": {"comment": "hi"}}
    ]
    scrubber()(Entity.NPS_RESPONSE, rows, [])
    assert rows[0] == {
        "source": "gainsight",
        "id": "S7",
        "email": None,
        "score": 9,
        "contact_id": SF_ID,
        "extra": {"_erased": True},
    }


def test_a_quarantined_record_of_the_person_keeps_no_content():
    bad = [{"record_id": "S9", "reason": "bad", "payload": {"PersonId": SF_ID, "Name": "Zeb"}}]
    scrubber()(Entity.NPS_RESPONSE, [], bad)
    assert bad[0]["payload"] is None


def test_retention_rules_apply_at_the_door():
    old = NOW - timedelta(days=40)
    rows = [
        contact("003DELETED0000AAAA", "d@y.io", deleted=True, source_updated_at=old),
        contact("003RECENTDEL00AAAA", "r@y.io", deleted=True, source_updated_at=NOW),
    ]
    s = Scrubber(None, NOW, deleted_cutoff=NOW - timedelta(days=30))
    s(Entity.CONTACT, rows, [])
    assert [r["email"] for r in rows] == [None, "r@y.io"]
    answers = [{"id": "S1", "source_updated_at": old, "extra": {"comment": "c", "n": 1}}]
    Scrubber(
        None,
        NOW,
        free_text={Entity.NPS_RESPONSE: ("comment",)},
        free_text_cutoff=NOW - timedelta(days=30),
    )(Entity.NPS_RESPONSE, answers, [])
    assert answers[0]["extra"] == {"n": 1}


def test_no_key_is_needed_while_nobody_was_erased(engine: Engine):
    def no_key() -> bytes:
        raise AssertionError("the key was asked for")

    assert load_scrubber(engine, no_key, NOW, PrivacySettings()).tombstones is None


def test_a_sync_after_an_erasure_stores_the_person_stripped(engine: Engine):
    crm = MemoryConnector(
        records={
            "Contact": [
                {"Id": SF_ID, "AccountId": "001A", "FirstName": "Zebedee", "SystemModstamp": NOW},
                {
                    "Id": "003OTHER0000000AAA",
                    "AccountId": "001A",
                    "FirstName": "Olive",
                    "SystemModstamp": NOW,
                },
                {"Id": SF_ID[:15] + "XXX", "FirstName": "BAD", "SystemModstamp": NOW},
            ]
        }
    )
    forget(engine, KEY, contact=SF_ID, reason="ticket 1", requested_by="dpo", now=NOW)
    scrub = load_scrubber(engine, lambda: KEY, NOW, PrivacySettings())
    with run_record(engine, "salesforce") as run:
        opts = IngestOptions(overlap=timedelta(0), now=NOW + timedelta(minutes=1), scrub=scrub)
        sync_source(engine, crm, [FakeContactMapping()], run, opts)
    with engine.connect() as conn:
        names = dict(conn.execute(sa.select(contacts.c.id, contacts.c.first_name)).all())
        payloads = conn.execute(sa.select(quarantine.c.payload)).scalars().all()
        tombs = conn.execute(sa.select(sa.func.count()).select_from(privacy_tombstones)).scalar()
    assert names == {SF_ID: None, "003OTHER0000000AAA": "Olive"}
    assert payloads == [None]  # the bad record of the erased person (a 15-char id) keeps no content
    assert tombs == 1
