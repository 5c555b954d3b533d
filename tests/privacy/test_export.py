"""``export-subject``: every row a direct query of any table finds for the person is exported."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.privacy.export import export_subject
from sync_service.privacy.forget import forget
from tests.privacy.people import (
    COMMENT,
    EMAIL,
    FIRST,
    GS_ID,
    LAST,
    NOW,
    OTHER_EMAIL,
    SF_ID,
    seed_person,
    text_of_every_row,
)

KEY = b"k" * 32


def key() -> bytes:
    return KEY


def test_export_holds_every_row_that_names_the_person(engine: Engine):
    seed_person(engine)
    data = export_subject(engine, key, email=EMAIL, now=NOW)
    exported = json.dumps(data["tables"])
    terms = (EMAIL, SF_ID, SF_ID[:15], GS_ID, f"{FIRST} {LAST}", FIRST, COMMENT)
    # Every row, in any table, whose text names the person by address, id or name...
    expected = {
        name: sum(1 for row in rows if any(t.lower() in row.lower() for t in terms))
        for name, rows in text_of_every_row(engine).items()
    }
    expected = {name: n for name, n in expected.items() if n}
    # ... is in the export, table by table (the bystander's rows are not).
    for name, n in expected.items():
        assert data["counts"].get(name, 0) >= n, name
    assert set(expected) <= {n for n, c in data["counts"].items() if c}
    assert data["counts"]["contacts"] == 2
    assert data["counts"]["nps_responses"] == 2  # by person id and by e-mail alone
    assert data["counts"]["quarantine"] == 2
    assert COMMENT in exported
    assert OTHER_EMAIL not in exported
    assert data["found"]
    assert not data["erased"]


def test_after_an_erasure_the_export_shows_the_erasure_and_nothing_personal(engine: Engine):
    seed_person(engine)
    forget(engine, KEY, contact=SF_ID, reason="ticket 7", requested_by="dpo", now=NOW)
    data = export_subject(engine, key, contact=SF_ID[:15], now=NOW)
    assert data["erased"]
    assert data["erasures"][0]["reason"] == "ticket 7"
    assert data["counts"]["privacy_tombstones"] >= 3
    text = json.dumps(data["tables"]).lower()
    assert all(t.lower() not in text for t in (EMAIL, FIRST, LAST, COMMENT))
    assert data["counts"]["contacts"] == 2  # found by id, still there, stripped


def test_export_of_an_unknown_person_is_empty(engine: Engine):
    data = export_subject(engine, key, email="nobody@example.org", now=NOW)
    assert not data["found"]
    assert sum(data["counts"].values()) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
