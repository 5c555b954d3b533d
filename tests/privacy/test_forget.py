"""``forget``: the person's personal data leaves every table; ids, counts and the audit stay."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import InputError, LockBusyError
from sync_service.ops.locks import job_lock
from sync_service.privacy.forget import forget
from sync_service.privacy.keys import KeyedHasher
from sync_service.store.models import (
    contacts,
    evaluations,
    nps_responses,
    privacy_erasures,
    privacy_tombstones,
    writeback_log,
    writeback_outbox,
)
from tests.privacy.people import (
    EMAIL,
    FIRST,
    GS_ID,
    LAST,
    NOW,
    OTHER_EMAIL,
    PERSONAL,
    SF_ID,
    seed_person,
    text_of_every_row,
)

KEY = b"k" * 32


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for name, t in (("contacts", contacts), ("nps", nps_responses), ("ev", evaluations))
        }


def erase(engine: Engine, **who: str) -> dict[str, int]:
    result = forget(
        engine,
        KEY,
        reason=f"ticket 42 from {FIRST} {LAST} <{EMAIL}>",
        requested_by="dpo",
        now=NOW,
        **who,
    )
    return result.tables


@pytest.mark.parametrize(
    "who", [{"email": EMAIL.upper()}, {"contact": SF_ID[:15]}, {"contact": GS_ID}]
)
def test_forget_leaves_nothing_personal_in_any_table(engine: Engine, who: dict[str, str]):
    seed_person(engine)
    before = counts(engine)
    tables = erase(engine, **who)
    assert tables["contacts"] == 2  # the Salesforce contact and the Gainsight person
    assert tables["nps_responses"] == 2
    leftovers = {
        (name, term)
        for name, rows in text_of_every_row(engine).items()
        for row in rows
        for term in PERSONAL
        if term.lower() in row.lower()
    }
    assert leftovers == set()
    assert counts(engine) == before  # rows stay: counts and joins are right
    with engine.connect() as conn:
        other = conn.execute(sa.select(contacts.c.email).where(contacts.c.email == OTHER_EMAIL))
        assert other.scalar() == OTHER_EMAIL  # a bystander on the same account is untouched
        row = conn.execute(sa.select(contacts).where(contacts.c.id == SF_ID)).mappings().one()
        assert (row["opted_out"], row["opted_in"], row["account_id"]) == (True, False, "001A")
        assert row["extra"] == {"_crm": {"Advocate_Status__c": "Eligible"}, "_erased": True}
        verdict = conn.execute(
            sa.select(evaluations.c.status, evaluations.c.reason).where(
                evaluations.c.entity_id == SF_ID
            )
        ).one()
        assert tuple(verdict) == ("Opted Out", "Erased on request")
        logged = dict(
            conn.execute(sa.select(writeback_log.c.field, writeback_log.c.new_value)).all()
        )
        assert logged == {"Advocate_Status__c": "Eligible", "Advocate_Reason__c": None}
        # the stale open outbox row (it would write "Eligible") is gone
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(writeback_outbox)).scalar_one() == 0
        )


def test_the_audit_says_who_why_and_what_without_the_person(engine: Engine):
    seed_person(engine)
    erase(engine, email=EMAIL)
    with engine.connect() as conn:
        audit = conn.execute(sa.select(privacy_erasures)).mappings().one()
        digests = set(conn.execute(sa.select(privacy_tombstones.c.digest)).scalars())
    assert audit["requested_by"] == "dpo"
    assert audit["reason"].startswith("ticket 42 from [erased]")
    assert all(t not in audit["reason"] for t in (EMAIL, FIRST, LAST))
    assert audit["tables"]["contacts"] == 2
    assert audit["tables"]["runs"] == 1
    hasher = KeyedHasher(KEY)
    assert audit["subject_digest"] == hasher.digest("email", EMAIL)
    assert {hasher.of_email(EMAIL), hasher.of_id(SF_ID), hasher.of_id(GS_ID)} <= digests


def test_a_person_not_yet_in_the_store_is_tombstoned_all_the_same(engine: Engine):
    result = forget(
        engine, KEY, email="new.person@example.org", reason="r", requested_by="x", now=NOW
    )
    assert not result.found
    assert result.tombstones == 1
    assert result.tables == {}


@pytest.mark.parametrize(
    ("who", "reason", "match"),
    [
        ({}, "r", "exactly one"),
        ({"email": "a@b.io", "contact": SF_ID}, "r", "exactly one"),
        ({"email": "not-an-address"}, "r", "e-mail address"),
        ({"contact": "003 bad id!"}, "r", "record id"),
        ({"email": "a@b.io"}, "  ", "reason"),
    ],
)
def test_bad_requests_change_nothing(engine: Engine, who: dict[str, str], reason: str, match: str):
    with pytest.raises(InputError, match=match) as err:
        forget(engine, KEY, reason=reason, requested_by="x", now=NOW, **who)
    assert err.value.exit_code == 2
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(privacy_erasures)).scalar() == 0


def test_forget_refuses_while_a_sync_runs(engine: Engine, tmp_path: Path):
    seed_person(engine)
    import threading

    held, release = threading.Event(), threading.Event()

    def sync() -> None:
        with job_lock(engine, "stage.gainsight", close_abandoned=False):
            held.set()
            release.wait(10)

    t = threading.Thread(target=sync)
    t.start()
    held.wait(10)
    try:
        with pytest.raises(LockBusyError, match="gainsight sync is running"):
            erase(engine, email=EMAIL)
    finally:
        release.set()
        t.join()
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(contacts.c.email).where(contacts.c.id == SF_ID)).scalar()
            == EMAIL
        )
