"""Incremental identity linking makes the links a full linking makes, on randomised stores.

Each round changes a random store as the ingest does (rows upserted with their change marks,
or marked and updated in place as the reconciliation and ``forget`` do), then links it twice:
in full inside a transaction that is rolled back (a copy of the store), and incrementally.
Every link column of every Gainsight row, and the counts, must be equal.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sync_service.store.models import accounts, contacts, eval_marks, nps_responses
from sync_service.store.upsert import upsert
from sync_service.sync import changes
from sync_service.sync.identity import IdentityResult, link_identities_in

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
GS, SF = "gainsight", "salesforce"
SEEDS = range(10)
ROUNDS = 6
#: The link columns of the Gainsight rows, per table.
LINKS = {
    accounts: ("sf_account_id",),
    contacts: ("sf_contact_id", "account_id"),
    nps_responses: ("contact_id", "account_id"),
}


def _sf_id(prefix: str, i: int) -> str:
    return f"{prefix}{i:012d}AAA"  # 18 characters, the last three not in the 15-char form


class Org:
    """A random pair of orgs as their CRMs hold them (raw values: carried ids, not links)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.emails = [f"user{i}@acme.com" for i in range(40)]
        self.sf: dict[sa.Table, dict[str, dict[str, Any]]] = {accounts: {}, contacts: {}}
        self.gs: dict[sa.Table, dict[str, dict[str, Any]]] = {
            accounts: {},
            contacts: {},
            nps_responses: {},
        }
        self.next = 0
        #: Salesforce ids already carried by Gainsight rows, of records not synced yet.
        self.pending: dict[str, list[str]] = {"001": [], "003": []}

    def _n(self) -> int:
        self.next += 1
        return self.next

    def email(self) -> str | None:
        r = self.rng.random()
        if r < 0.1:
            return None
        address = self.rng.choice(self.emails)
        if r < 0.3:
            return f"  {address.upper()} "  # the same address, as another system spells it
        return address

    def sf_ref(self, prefix: str) -> str | None:
        """A carried Salesforce id: none, an existing one, one not synced yet, or a wrong one.

        Either as Salesforce has it or in its 15-character form.
        """
        r = self.rng.random()
        existing = sorted(self.sf[accounts if prefix == "001" else contacts])
        if r < 0.25:
            return None
        if r < 0.55 and existing:
            rid = self.rng.choice(existing)
        elif r < 0.85:
            rid = _sf_id(prefix, self._n())
            self.pending[prefix].append(rid)
        else:
            rid = _sf_id(prefix, 10**9 + self._n())  # names nothing, ever
        return rid[:15] if self.rng.random() < 0.4 else rid

    def _new_sf_id(self, prefix: str) -> str:
        pending = self.pending[prefix]
        if pending and self.rng.random() < 0.6:  # a late record: Gainsight named it already
            return pending.pop(self.rng.randrange(len(pending)))
        return _sf_id(prefix, self._n())

    def new_sf_account(self) -> str:
        rid = self._new_sf_id("001")
        self.sf[accounts][rid] = {"id": rid, "name": rid, "deleted": False}
        return rid

    def new_sf_contact(self) -> str:
        rid = self._new_sf_id("003")
        self.sf[contacts][rid] = {
            "id": rid,
            "email": self.email(),
            "account_id": self.pick(self.sf[accounts]),
            "deleted": self.rng.random() < 0.05,
        }
        return rid

    def pick(self, rows: dict[str, dict[str, Any]]) -> str | None:
        return self.rng.choice(sorted(rows)) if rows and self.rng.random() < 0.85 else None

    def new_company(self) -> str:
        rid = f"GC{self._n()}"
        self.gs[accounts][rid] = {"id": rid, "sf_account_id": self.sf_ref("001"), "deleted": False}
        return rid

    def new_person(self) -> str:
        rid = f"GP{self._n()}"
        self.gs[contacts][rid] = {
            "id": rid,
            "email": self.email(),
            "sf_contact_id": self.sf_ref("003"),
            "account_id": self.sf_ref("001") if self.rng.random() < 0.3 else None,
            "deleted": self.rng.random() < 0.05,
        }
        return rid

    def new_answer(self) -> str:
        rid = f"GN{self._n()}"
        person = self.pick(self.gs[contacts])
        self.gs[nps_responses][rid] = {
            "id": rid,
            "person_id": person if self.rng.random() < 0.7 else f"GP{self.next + 99}",
            "email": self.email(),
            "contact_id": self.sf_ref("003") if self.rng.random() < 0.4 else None,
            "account_id": self.sf_ref("001") if self.rng.random() < 0.4 else None,
            "score": self.rng.randrange(11),
            "deleted": self.rng.random() < 0.05,
        }
        return rid

    def grow(self, n: int) -> dict[tuple[str, sa.Table], set[str]]:
        """Add about ``n`` records of every kind; return the ids touched per source and table."""
        touched: dict[tuple[str, sa.Table], set[str]] = {}
        makers = [
            (SF, accounts, self.new_sf_account),
            (SF, contacts, self.new_sf_contact),
            (GS, accounts, self.new_company),
            (GS, contacts, self.new_person),
            (GS, nps_responses, self.new_answer),
        ]
        for source, table, make in makers:
            for _ in range(self.rng.randrange(n + 1)):
                touched.setdefault((source, table), set()).add(make())
        return touched

    def change(self) -> dict[tuple[str, sa.Table], set[str]]:
        """Change a few records in place (e-mails, deletions, ids, persons); return their ids."""
        rng = self.rng
        touched = self.grow(3)
        for rid in rng.sample(sorted(self.sf[contacts]), min(4, len(self.sf[contacts]))):
            row = self.sf[contacts][rid]
            what = rng.choice(["email", "email", "delete", "undelete", "account"])
            if what == "email":
                row["email"] = self.email()  # may make an address ambiguous, or unique again
            elif what == "delete":
                row["deleted"] = True
            elif what == "undelete":
                row["deleted"] = False
            else:
                row["account_id"] = self.pick(self.sf[accounts])
            touched.setdefault((SF, contacts), set()).add(rid)
        for rid in rng.sample(sorted(self.sf[accounts]), min(2, len(self.sf[accounts]))):
            self.sf[accounts][rid]["deleted"] = not self.sf[accounts][rid]["deleted"]
            touched.setdefault((SF, accounts), set()).add(rid)
        for table, rows in self.gs.items():
            for rid in rng.sample(sorted(rows), min(4, len(rows))):
                row = rows[rid]
                if "email" in row and rng.random() < 0.5:
                    row["email"] = self.email()
                if table is nps_responses and rng.random() < 0.3:
                    row["person_id"] = self.pick(self.gs[contacts])
                if table is accounts and rng.random() < 0.5:
                    row["sf_account_id"] = self.sf_ref("001")
                if rng.random() < 0.1:
                    row["deleted"] = not row["deleted"]
                # else read again unchanged: the carried ids overwrite the links
                touched.setdefault((GS, table), set()).add(rid)
        return touched

    def rows(self, source: str, table: sa.Table, ids: set[str]) -> list[dict[str, Any]]:
        held = (self.sf if source == SF else self.gs)[table]
        return [{**held[i], "source": source, "synced_at": NOW} for i in sorted(ids)]


def ingest(
    conn: Connection, org: Org, touched: dict[tuple[str, sa.Table], set[str]], full_read: bool
) -> None:
    """Store the touched records as the ingest does: marks first, in the rows' transaction.

    ``full_read``: one table is read again whole, as after a changed mapping (a full mark).
    """
    for (source, table), ids in sorted(touched.items(), key=lambda kv: (kv[0][0], kv[0][1].name)):
        rows = org.rows(source, table, ids)
        changes.write_marks(conn, changes.changed_marks(conn, table, source, rows, NOW))
        upsert(conn, table, rows)
    if full_read:
        source, table = org.rng.choice([(SF, contacts), (GS, contacts), (GS, nps_responses)])
        held = org.sf if source == SF else org.gs
        changes.mark_full(conn, source, table.name, NOW)
        upsert(conn, table, org.rows(source, table, set(held[table])))


def erase_or_vanish(conn: Connection, rng: random.Random) -> None:
    """Mark and update rows in place: a contact gone from Salesforce, a person's e-mail erased."""
    gone = conn.execute(
        sa.select(contacts.c.id)
        .where(contacts.c.source == SF, sa.not_(contacts.c.deleted))
        .order_by(contacts.c.id)
    ).scalars()
    vanished = [i for i in gone if rng.random() < 0.15]
    people = conn.execute(
        sa.select(contacts.c.id)
        .where(contacts.c.source == GS, contacts.c.email.is_not(None))
        .order_by(contacts.c.id)
    ).scalars()
    erased = [i for i in people if rng.random() < 0.05]
    for source, ids, values in ((SF, vanished, {"deleted": True}), (GS, erased, {"email": None})):
        where = sa.and_(contacts.c.source == source, contacts.c.id.in_(ids))
        changes.mark_where(conn, contacts, where, NOW)
        conn.execute(contacts.update().where(where).values(**values))


def links(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table.name: [
            tuple(r)
            for r in conn.execute(
                sa.select(table.c.id, *[table.c[c] for c in cols])
                .where(table.c.source == GS)
                .order_by(table.c.id)
            )
        ]
        for table, cols in LINKS.items()
    }


def identity_marks(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(eval_marks.c.entity.startswith(changes.ID))
        ).scalar_one()
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_incremental_linking_equals_a_full_linking(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    org = Org(rng)
    for round_no in range(ROUNDS):
        touched = org.grow(30) if round_no == 0 else org.change()
        full_read = round_no > 0 and rng.random() < 0.15
        with engine.begin() as conn:
            ingest(conn, org, touched, full_read)
            if round_no > 0 and rng.random() < 0.5:
                erase_or_vanish(conn, rng)
        with engine.connect() as conn:
            with conn.begin() as copy:  # the full linking of the same store, then undone
                full = link_identities_in(conn, full=True)
                expected = links(conn)
                copy.rollback()
            with conn.begin():
                result: IdentityResult = link_identities_in(conn)
                got = links(conn)
            assert identity_marks(conn) == 0
        assert got == expected, f"seed {seed}, round {round_no}"
        assert result.as_counts() == full.as_counts()
        assert result.full == full_read  # else incremental: only a full read asks for all
