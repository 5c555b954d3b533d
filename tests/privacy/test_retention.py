"""Retention: personal data of CRM-deleted records after ``deleted_days``; free text after
``free_text_days``; the clock is the ``now`` each pass is given."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.ops.housekeeping import housekeeping
from sync_service.privacy.retention import apply_retention
from sync_service.settings import PrivacySettings, Settings
from sync_service.store.models import contacts, nps_responses
from tests.privacy.people import EMAIL, NOW, OTHER_EMAIL, OTHER_ID, SF_ID, seed_person


def delete_in_crm(engine: Engine, contact_id: str, *, deleted: bool = True) -> None:
    with engine.begin() as conn:
        conn.execute(contacts.update().where(contacts.c.id == contact_id).values(deleted=deleted))


def email_of(engine: Engine, contact_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(contacts.c.email).where(
                contacts.c.source == "salesforce", contacts.c.id == contact_id
            )
        ).scalar()


def test_a_contact_deleted_in_the_crm_is_purged_after_the_configured_days(engine: Engine):
    seed_person(engine)
    delete_in_crm(engine, SF_ID)
    settings = PrivacySettings(deleted_days=30)
    first = apply_retention(engine, settings, NOW)
    assert first.noted["contacts"] == 1
    assert first.purged["contacts"] == 0
    assert apply_retention(engine, settings, NOW + timedelta(days=29)).purged["contacts"] == 0
    assert email_of(engine, SF_ID) == EMAIL
    later = apply_retention(engine, settings, NOW + timedelta(days=30, hours=1))
    assert later.purged["contacts"] == 1
    assert email_of(engine, SF_ID) is None
    assert email_of(engine, OTHER_ID) == OTHER_EMAIL  # live contacts are not touched
    with engine.connect() as conn:  # the row stays (suppress, never delete)
        assert conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar() == 3
    assert apply_retention(engine, settings, NOW + timedelta(days=60)).purged["contacts"] == 0


def test_a_contact_restored_in_the_crm_before_the_deadline_is_kept(engine: Engine):
    seed_person(engine)
    delete_in_crm(engine, SF_ID)
    settings = PrivacySettings(deleted_days=30)
    apply_retention(engine, settings, NOW)
    delete_in_crm(engine, SF_ID, deleted=False)
    assert apply_retention(engine, settings, NOW + timedelta(days=1)).restored["contacts"] == 1
    assert apply_retention(engine, settings, NOW + timedelta(days=40)).purged["contacts"] == 0
    assert email_of(engine, SF_ID) == EMAIL


def test_free_text_goes_after_free_text_days_and_not_before(engine: Engine):
    seed_person(engine)
    with engine.begin() as conn:
        conn.execute(nps_responses.update().values(source_updated_at=NOW))
    settings = PrivacySettings(free_text_days=90)
    assert apply_retention(engine, settings, NOW + timedelta(days=89)).free_text == {
        "nps_responses": 0
    }
    result = apply_retention(engine, settings, NOW + timedelta(days=91))
    assert result.free_text == {"nps_responses": 3}
    with engine.connect() as conn:
        extras = conn.execute(sa.select(nps_responses.c.extra)).scalars().all()
        scores = conn.execute(sa.select(nps_responses.c.score)).scalars().all()
    assert all("comment" not in (e or {}) for e in extras)
    assert sorted(scores) == [3, 9, 10]  # the figures stay


def test_without_free_text_days_comments_are_kept(engine: Engine):
    seed_person(engine)
    assert apply_retention(engine, PrivacySettings(), NOW + timedelta(days=3000)).free_text == {}


def test_the_daily_housekeeping_reports_what_retention_did(engine: Engine):
    seed_person(engine)
    delete_in_crm(engine, SF_ID)
    settings = Settings(privacy=PrivacySettings(deleted_days=0))
    counts = housekeeping(engine, settings, now=NOW)
    assert counts["retention.noted.contacts"] == 1
    assert counts["retention.purged.contacts"] == 1
