from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.models import accounts, contacts, eval_marks, nps_responses
from sync_service.store.upsert import upsert
from sync_service.sync import changes
from sync_service.sync.identity import link_all, link_identities

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SF_ACC = "001000000000001AAA"
SF_ACC2 = "001000000000002AAA"


def put(engine: Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Store ``rows`` as the ingest does: with their change marks, which the linking reads."""
    full = [{"deleted": False, "synced_at": NOW, **r} for r in rows]
    with engine.begin() as conn:
        for source in {r["source"] for r in full}:
            mine = [r for r in full if r["source"] == source]
            changes.write_marks(conn, changes.changed_marks(conn, table, source, mine, NOW))
        upsert(conn, table, full)


def value(engine: Engine, table: sa.Table, col: str, source: str, rid: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(table.c[col]).where(table.c.source == source, table.c.id == rid)
        ).scalar_one()


def seed_salesforce(engine: Engine) -> None:
    put(
        engine,
        accounts,
        [
            {"source": "salesforce", "id": SF_ACC, "name": "Acme"},
            {"source": "salesforce", "id": SF_ACC2, "name": "Globex"},
            {"source": "salesforce", "id": "001000000000009AAA", "name": "Gone", "deleted": True},
        ],
    )
    put(
        engine,
        contacts,
        [
            {
                "source": "salesforce",
                "id": "003A",
                "email": "Jane.Doe@Acme.com",
                "account_id": SF_ACC,
            },
            {
                "source": "salesforce",
                "id": "003B",
                "email": "bob@globex.com ",
                "account_id": SF_ACC2,
            },
            {
                "source": "salesforce",
                "id": "003C",
                "email": "shared@acme.com",
                "account_id": SF_ACC,
            },
            {
                "source": "salesforce",
                "id": "003D",
                "email": "SHARED@acme.com",
                "account_id": SF_ACC,
            },
            {"source": "salesforce", "id": "003E", "email": "old@acme.com", "deleted": True},
            {"source": "salesforce", "id": "003F", "email": None, "account_id": SF_ACC2},
        ],
    )


def test_companies_link_by_the_account_id_they_carry(engine: Engine) -> None:
    seed_salesforce(engine)
    put(
        engine,
        accounts,
        [
            {"source": "gainsight", "id": "GC1", "sf_account_id": SF_ACC},
            {"source": "gainsight", "id": "GC2", "sf_account_id": SF_ACC2[:15]},  # 15-char id
            {"source": "gainsight", "id": "GC3", "sf_account_id": None},  # no Salesforce id
            {"source": "gainsight", "id": "GC4", "sf_account_id": "001000000000404AAA"},
            {"source": "gainsight", "id": "GC5", "sf_account_id": "001000000000009AAA"},  # deleted
        ],
    )
    counts = link_identities(engine).as_counts()
    assert counts["matched.accounts"] == 2
    assert counts["unmatched.accounts"] == 3
    assert counts["ambiguous.accounts"] == 0
    assert value(engine, accounts, "sf_account_id", "gainsight", "GC2") == SF_ACC2
    # Unmatched companies are kept, their carried id untouched, so a later SF sync can link them.
    assert value(engine, accounts, "sf_account_id", "gainsight", "GC4") == "001000000000404AAA"
    assert value(engine, accounts, "sf_account_id", "gainsight", "GC3") is None


def test_people_link_by_contact_id_else_by_normalised_email(engine: Engine) -> None:
    seed_salesforce(engine)
    put(
        engine,
        contacts,
        [
            {"source": "gainsight", "id": "P1", "sf_contact_id": "003B", "email": "x@y.com"},
            {
                "source": "gainsight",
                "id": "P2",
                "sf_contact_id": None,
                "email": "  jane.doe@ACME.com",
            },
            {"source": "gainsight", "id": "P3", "sf_contact_id": None, "email": "BOB@globex.com"},
            {"source": "gainsight", "id": "P4", "sf_contact_id": None, "email": "shared@ACME.com"},
            {"source": "gainsight", "id": "P5", "sf_contact_id": None, "email": "nobody@acme.com"},
            {
                "source": "gainsight",
                "id": "P6",
                "sf_contact_id": "003ZZZ",
                "email": "jane.doe@acme.com",
            },
            {"source": "gainsight", "id": "P7", "sf_contact_id": None, "email": "old@acme.com"},
            {"source": "gainsight", "id": "P8", "sf_contact_id": None, "email": None},
            {"source": "gainsight", "id": "P9", "email": "jane.doe@acme.com", "deleted": True},
        ],
    )
    counts = link_identities(engine).as_counts()
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P1") == "003B"
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P2") == "003A"
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P3") == "003B"
    # Two Salesforce contacts share the address: nothing is guessed.
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P4") is None
    # A carried id naming no contact falls back to the e-mail.
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P6") == "003A"
    # A deleted Salesforce contact is no match.
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P7") is None
    # Linked people take their contact's account.
    assert value(engine, contacts, "account_id", "gainsight", "P2") == SF_ACC
    assert counts["matched.contacts"] == 4
    assert counts["ambiguous.contacts"] == 1
    assert counts["unmatched.contacts"] == 3  # P5, P7, P8; the deleted P9 is not counted
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(contacts).where(contacts.c.source == "gainsight")
        ).scalar_one()
    assert total == 9  # unmatched and ambiguous people are kept


def test_nps_answers_link_through_person_or_email(engine: Engine) -> None:
    seed_salesforce(engine)
    put(
        engine,
        contacts,
        [{"source": "gainsight", "id": "P1", "sf_contact_id": "003B", "email": "bob@globex.com"}],
    )
    put(
        engine,
        nps_responses,
        [
            {"source": "gainsight", "id": "N1", "person_id": "P1", "score": 9},
            {"source": "gainsight", "id": "N2", "email": " Jane.Doe@acme.COM", "score": 10},
            {"source": "gainsight", "id": "N3", "email": "shared@acme.com", "score": 3},
            {"source": "gainsight", "id": "N4", "email": "stranger@else.org", "score": 7},
            {"source": "gainsight", "id": "N5", "contact_id": "003A", "account_id": SF_ACC2},
            {"source": "gainsight", "id": "N6", "contact_id": "003A"[:3], "email": None},
        ],
    )
    counts = link_identities(engine).as_counts()
    assert value(engine, nps_responses, "contact_id", "gainsight", "N1") == "003B"
    assert value(engine, nps_responses, "account_id", "gainsight", "N1") == SF_ACC2
    assert value(engine, nps_responses, "contact_id", "gainsight", "N2") == "003A"
    assert value(engine, nps_responses, "account_id", "gainsight", "N2") == SF_ACC
    assert value(engine, nps_responses, "contact_id", "gainsight", "N3") is None
    # A valid carried account stays, even if it differs from the contact's.
    assert value(engine, nps_responses, "account_id", "gainsight", "N5") == SF_ACC2
    assert counts["matched.nps_responses"] == 3
    assert counts["ambiguous.nps_responses"] == 1
    assert counts["unmatched.nps_responses"] == 2


def test_linking_twice_changes_nothing_and_late_salesforce_rows_link(engine: Engine) -> None:
    put(
        engine,
        contacts,
        [{"source": "gainsight", "id": "P1", "sf_contact_id": None, "email": "Late@Acme.com"}],
    )
    first = link_identities(engine).as_counts()
    assert (first["matched.contacts"], first["unmatched.contacts"]) == (0, 1)
    put(engine, contacts, [{"source": "salesforce", "id": "003L", "email": "late@acme.com"}])
    second = link_identities(engine).as_counts()
    third = link_identities(engine).as_counts()
    assert second["matched.contacts"] == 1
    assert third == second
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P1") == "003L"


def test_empty_store_gives_zero_counts(engine: Engine) -> None:
    counts = link_identities(engine).as_counts()
    assert set(counts.values()) == {0}
    assert len(counts) == 9


def test_link_all_gives_flat_run_counts(engine: Engine) -> None:
    put(engine, accounts, [{"source": "gainsight", "id": "GC1", "sf_account_id": None}])
    assert link_all(engine)["unmatched.accounts"] == 1


def test_an_unmarked_row_links_only_in_a_full_linking(engine: Engine) -> None:
    seed_salesforce(engine)
    with engine.begin() as conn:  # written without marks (as before migration 0014)
        upsert(
            conn,
            contacts,
            [{"source": "gainsight", "id": "P1", "email": "bob@globex.com", "synced_at": NOW}],
        )
    link_identities(engine)
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P1") is None
    counts = link_identities(engine, full=True).as_counts()
    assert (counts["matched.contacts"], counts["unmatched.contacts"]) == (1, 0)
    assert value(engine, contacts, "sf_contact_id", "gainsight", "P1") == "003B"


def test_the_linking_consumes_its_marks_and_leaves_the_evaluations(engine: Engine) -> None:
    seed_salesforce(engine)
    put(engine, contacts, [{"source": "gainsight", "id": "P1", "email": "bob@globex.com"}])
    with engine.connect() as conn:
        before = conn.execute(sa.select(eval_marks.c.entity)).scalars().all()
    assert "id:contacts" in before
    link_identities(engine)
    with engine.connect() as conn:
        after = conn.execute(sa.select(eval_marks.c.entity)).scalars().all()
    assert sorted(after) == sorted(e for e in before if not e.startswith(changes.ID))
    assert after  # the evaluation's marks stay for the evaluation


def test_an_answer_moved_to_another_person_links_through_it(engine: Engine) -> None:
    seed_salesforce(engine)
    put(engine, contacts, [{"source": "gainsight", "id": "P1", "sf_contact_id": "003B"}])
    answer = {"source": "gainsight", "id": "N1", "person_id": "P0", "score": 9}
    put(engine, nps_responses, [answer])
    link_identities(engine)
    assert value(engine, nps_responses, "contact_id", "gainsight", "N1") is None
    put(engine, nps_responses, [{**answer, "person_id": "P1"}])  # only the person changed
    link_identities(engine)
    assert value(engine, nps_responses, "contact_id", "gainsight", "N1") == "003B"


def test_two_linkings_at_once_both_finish_with_the_links_of_one(engine: Engine) -> None:
    seed_salesforce(engine)
    people = [
        {"source": "gainsight", "id": f"P{i}", "email": e}
        for i, e in enumerate(["bob@globex.com", "shared@acme.com", "jane.doe@acme.com"] * 50)
    ]
    put(engine, contacts, people)
    errors: list[BaseException] = []

    def link(full: bool) -> None:
        try:
            link_identities(engine, full=full)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=link, args=(full,)) for full in (True, False, True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    counts = link_identities(engine, full=True).as_counts()
    assert (counts["matched.contacts"], counts["ambiguous.contacts"]) == (100, 50)
    assert link_identities(engine).as_counts() == counts
