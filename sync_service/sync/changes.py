"""Change marks: which stored rows' canonical values changed, so the evaluation reads only them.

The ingest compares each batch with the rows already stored, before it upserts them, and writes
one mark (:data:`~sync_service.store.models.eval_marks`) per row that is new or whose values
changed, in the transaction that commits the rows: a ``kill -9`` between them cannot lose a
mark. Compared are the canonical columns the policy can read (every column of the row, its
``deleted`` mark and its ``extra`` fields), never the replication key: Salesforce moves
``SystemModstamp`` when the service's own writeback updates a record (the echo), and the CRM's
current values of the writeback fields (``extra._crm``) are not policy inputs either, so an
echo marks nothing.

A first load, or a stream read again in full, writes a full mark (``entity = '*'``) with each
commit instead of comparing: the next evaluation is then a full one.

Identity linking (:mod:`sync_service.sync.identity`) has marks of its own in the same table,
``id:<table>``: a Gainsight row new or changed in what linking reads, and, once the store holds
Gainsight rows, a Salesforce account or contact new or changed in what linking reads (a
contact's with its e-mail before the change, in ``prior``). ``id:*`` asks for a full linking.
The evaluation ignores them; the linking deletes those it read.

:func:`fill_scope` turns the marks (and the verdicts whose ``valid_until`` has come) into the
account ids the evaluation reads; :func:`consume` deletes the marks an evaluation has read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from canonical.model import System
from sync_service.store.models import (
    accounts,
    advocacy_asks,
    contacts,
    email_key,
    eval_marks,
    eval_scope,
    evaluations,
    nps_responses,
    opportunities,
    sync_state,
    tickets,
    writeback_state,
)
from sync_service.store.upsert import upsert
from sync_service.writeback.values import crm_values, same_as_written

#: The mark asking for a full evaluation.
FULL = "*"
#: Marks of records whose written fields changed in the CRM start so (the writeback's).
CRM = "crm:"
#: The mark asking for a full writeback diff.
CRM_FULL = CRM + FULL
#: Marks of rows whose identity links may change start so (sync/identity.py): ``id:<table>``.
#: They are identity linking's, not the evaluation's: it reads and deletes them itself.
ID = "id:"
#: The mark asking identity linking to relink every Gainsight row.
ID_FULL = ID + FULL

#: Per table, the columns identity linking reads, by source: a row whose values of these are
#: new or changed is relinked (Gainsight), or relinks the Gainsight rows naming it (Salesforce).
_IDENTITY_INPUTS: dict[str, dict[str, tuple[str, ...]]] = {
    System.GAINSIGHT: {
        accounts.name: ("sf_account_id", "deleted"),
        contacts.name: ("email", "sf_contact_id", "account_id", "deleted"),
        nps_responses.name: ("email", "person_id", "contact_id", "account_id", "deleted"),
    },
    System.SALESFORCE: {
        accounts.name: ("deleted",),
        contacts.name: ("email", "account_id", "deleted"),
    },
}

#: Row keys that are not policy inputs: the replication key, when it was read, the table key.
_NOT_INPUTS = frozenset({"source", "id", "synced_at", "source_updated_at"})
#: ``extra`` keys that are not policy inputs: the CRM's current values of the writeback fields.
_EXTRA_NOT_INPUTS = frozenset({"_crm"})
#: Ids per ``IN`` list (well under every driver's bound-parameter limit).
_PROBE = 900


def _plain(value: Any) -> Any:
    """A value in one form whichever way it came (the mapping's row or the database's)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        inputs = {k: v for k, v in value.items() if k not in _EXTRA_NOT_INPUTS}
        return json.dumps(inputs, sort_keys=True, default=str)
    return value


#: Columns of Gainsight rows the identity linking fills or widens after the ingest
#: (sync/identity.py): the CRM's value read again is the raw one, the stored one the link.
_LINKS = frozenset({"sf_account_id", "sf_contact_id", "account_id", "contact_id"})


def _same_link(new: Any, old: Any) -> bool:
    """A carried id read again as the CRM has it, where the store holds the link made from it.

    Empty (the link was found by e-mail or through the contact) or the 15-character form of
    the stored 18-character id: the linking makes the same link again.
    """
    if old is None:
        return False
    if new is None:
        return True
    return isinstance(new, str) and len(new) == 15 and str(old)[:15] == new


def changed_marks(
    conn: Connection,
    table: sa.Table,
    system: str,
    rows: Sequence[dict[str, Any]],
    now: datetime,
    object_name: str | None = None,
) -> list[dict[str, Any]]:
    """The marks of ``rows`` (about to be upserted): new rows and rows whose inputs differ.

    Reads the stored rows by primary key before the upsert overwrites them. ``object_name``
    (the CRM object read): a record whose written fields now hold exactly what the service
    last confirmed writing there is the echo of that write, and gets no writeback mark.
    """
    if not rows:
        return []
    keys = sorted({k for row in rows for k in row} - _NOT_INPUTS)
    stored: dict[str, Any] = {}
    ids = [row["id"] for row in rows]
    cols = [table.c.id, *[table.c[k] for k in keys]]
    for i in range(0, len(ids), _PROBE):
        part = ids[i : i + _PROBE]
        for rec in conn.execute(
            sa.select(*cols).where(table.c.source == system, table.c.id.in_(part))
        ):
            stored[rec[0]] = rec
    has_account = "account_id" in table.c
    linked = system == System.GAINSIGHT
    identity = _IDENTITY_INPUTS.get(system, {}).get(table.name)
    if identity is not None and not linked and not gainsight_stored(conn):
        identity = None  # nothing to link to these rows yet (a Salesforce-only store)
    marks: list[dict[str, Any]] = []
    # records whose written fields changed in the CRM: id -> (the CRM's values, the stored ones)
    crm_changed: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for row in rows:
        old = stored.get(row["id"])
        old_account = None
        if identity is not None:
            marks.extend(_identity_mark(system, table, row, old, identity, now))
        if old is not None:
            values = old._mapping
            same = all(
                _plain(row[k]) == _plain(values[k])
                or (linked and k in _LINKS and _same_link(row[k], values[k]))
                for k in keys
                if k in row
            )
            if "extra" in row and _crm(row["extra"]) != _crm(values["extra"]):
                # someone (or our writeback) changed a field the service writes: the writeback
                # diffs this record again (writeback/cursor.py), unless it is our own write
                crm_changed[row["id"]] = (crm_values(row["extra"]), crm_values(values["extra"]))
            if same:
                continue
            if has_account and "account_id" in row and values["account_id"] != row["account_id"]:
                old_account = values["account_id"]
        elif "extra" in row and _crm(row["extra"]):
            marks.append(_mark(system, CRM + table.name, row["id"], None, now))
        marks.append(
            {
                "source": system,
                "entity": table.name,
                "id": row["id"],
                "account_id": old_account,
                "marked_at": now,
            }
        )
    echoes = _echoes(conn, system, object_name, crm_changed) if object_name else set()
    marks += [
        _mark(system, CRM + table.name, rid, None, now) for rid in crm_changed if rid not in echoes
    ]
    return marks


def _echoes(
    conn: Connection,
    system: str,
    object_name: str,
    changed: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> set[str]:
    """The records of ``changed`` whose every changed written field holds what we last wrote.

    Salesforce answers our writeback with the values we sent; read back by the next sync, they
    differ from the values stored before the write. Such a record is the echo: diffing it
    again would find nothing to do (and, on the first cycle, it is every record we wrote).
    """
    if not changed:
        return set()
    ws = writeback_state
    written: dict[str, dict[str, Any]] = {}
    ids = list(changed)
    for i in range(0, len(ids), _PROBE):
        for rid, fld, value in conn.execute(
            sa.select(ws.c.record_id, ws.c.field, ws.c.value).where(
                ws.c.target == system,
                ws.c.object_name == object_name,
                ws.c.record_id.in_(ids[i : i + _PROBE]),
            )
        ):
            written.setdefault(rid, {})[fld] = value
    echoes = set()
    for rid, (new, old) in changed.items():
        ours = written.get(rid, {})
        moved = [f for f in new.keys() | old.keys() if _plain(new.get(f)) != _plain(old.get(f))]
        if all(f in ours and same_as_written(new.get(f), ours[f]) for f in moved):
            echoes.add(rid)
    return echoes


def _mark(
    source: str,
    entity: str,
    rid: str,
    account: str | None,
    now: datetime,
    prior: str | None = None,
) -> dict[str, Any]:
    return {
        "source": source,
        "entity": entity,
        "id": rid,
        "account_id": account,
        "marked_at": now,
        "prior": prior,
    }


def _identity_mark(
    system: str,
    table: sa.Table,
    row: dict[str, Any],
    old: Any,
    inputs: tuple[str, ...],
    now: datetime,
) -> list[dict[str, Any]]:
    """The identity mark of ``row`` when it is new or a column linking reads changed.

    Compared raw, not as :func:`_same_link` does: the upsert writes the carried id read
    again over the stored link, so the row must be linked again. A Salesforce contact's mark
    carries its old e-mail: people who matched that one may match another contact now.
    """
    if old is not None:
        values = old._mapping
        if all(_plain(row[k]) == _plain(values[k]) for k in inputs if k in row):
            return []
    prior = None
    if system == System.SALESFORCE and old is not None and "email" in old._mapping:
        prior = old._mapping["email"]
    return [_mark(system, ID + table.name, row["id"], None, now, prior)]


def gainsight_stored(conn: Connection) -> bool:
    """Whether the store holds any Gainsight row (else Salesforce rows need no identity mark).

    One primary-key probe per table, asked per batch rather than cached: Gainsight's first load
    may commit while a Salesforce sync runs.
    """
    return any(
        conn.execute(sa.select(t.c.id).where(t.c.source == System.GAINSIGHT).limit(1)).first()
        is not None
        for t in (accounts, contacts, nps_responses)
    )


def _crm(extra: Any) -> Any:
    crm = extra.get("_crm") if isinstance(extra, dict) else None
    return _plain(crm) if isinstance(crm, dict) else None


def _evaluation_mark(entity: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether a mark is the evaluation's (not the writeback's nor identity linking's)."""
    return sa.and_(~entity.startswith(CRM), ~entity.startswith(ID))


def input_marks(marks: Iterable[dict[str, Any]]) -> int:
    """How many of ``marks`` are changes of policy inputs (the evaluation's marks)."""
    return sum(1 for m in marks if not str(m["entity"]).startswith((CRM, ID)))


def write_marks(conn: Connection, marks: Iterable[dict[str, Any]]) -> int:
    """Insert ``marks`` in the caller's transaction; return how many."""
    # one statement for all: every mark needs every column, ``prior`` is rarely given
    batch = [{"prior": None, **m} for m in marks]
    if batch:
        conn.execute(eval_marks.insert(), batch)
    return len(batch)


def mark_full(conn: Connection, system: str, stream: str, now: datetime) -> None:
    """Ask for a full evaluation, a full writeback diff and a full identity linking.

    A first load or a full read compares nothing, so nothing narrower can be marked. The full
    linking is asked only where there is something to link (see :func:`gainsight_stored`).
    """
    marks = [_mark(system, FULL, stream, None, now), _mark(system, CRM_FULL, stream, None, now)]
    if system == System.GAINSIGHT or gainsight_stored(conn):
        marks.append(_mark(system, ID_FULL, stream, None, now))
    write_marks(conn, marks)


def mark_where(
    conn: Connection, table: sa.Table, where: ColumnElement[bool], now: datetime
) -> None:
    """Mark the rows of ``table`` matching ``where`` (before an UPDATE changes them).

    The rows identity linking reads are marked for it too, a contact with its e-mail before
    the change (the UPDATE may delete or strip it).
    """
    account = table.c.account_id if "account_id" in table.c else sa.null()
    prior = table.c.email if table is contacts else sa.null()
    entities: list[tuple[str, ColumnElement[Any], ColumnElement[Any]]] = [
        (table.name, account, sa.null())
    ]
    if any(table.name in by_table for by_table in _IDENTITY_INPUTS.values()) and (
        gainsight_stored(conn)
    ):
        entities.append((ID + table.name, sa.null(), prior))
    for entity, marked_account, marked_prior in entities:
        conn.execute(
            eval_marks.insert().from_select(
                ["source", "entity", "id", "account_id", "marked_at", "prior"],
                sa.select(
                    table.c.source,
                    sa.literal(entity, sa.String()),
                    table.c.id,
                    marked_account,
                    sa.literal(now, eval_marks.c.marked_at.type),
                    marked_prior,
                ).where(where),
            )
        )


def forget_prior(conn: Connection, emails: Iterable[str], now: datetime) -> int:
    """Drop the old e-mails ``emails`` that identity marks carry (a person erased on request).

    Without it the linking cannot find who shared such an address, so a full linking is
    asked instead (erasures are rare). Returns how many marks carried one.
    """
    m = eval_marks
    keys = sorted(emails)
    if not keys:
        return 0
    hit = sa.and_(m.c.prior.is_not(None), email_key(m.c.prior).in_(keys))
    dropped = int(conn.execute(m.update().where(hit).values(prior=None)).rowcount or 0)
    if dropped:
        write_marks(conn, [_mark(System.SALESFORCE, ID_FULL, "forget", None, now)])
    return dropped


def last_seq(conn: Connection) -> int:
    """The newest mark's number (0: none); an evaluation consumes the marks up to it."""
    return int(
        conn.execute(sa.select(sa.func.coalesce(sa.func.max(eval_marks.c.seq), 0))).scalar_one()
    )


def wants_full(conn: Connection, upto: int) -> bool:
    """Whether a mark up to ``upto`` asks for a full evaluation."""
    return (
        conn.execute(
            sa.select(eval_marks.c.seq)
            .where(eval_marks.c.seq <= upto, eval_marks.c.entity == FULL)
            .limit(1)
        ).first()
        is not None
    )


def _joined(table: Any, upto: int, entity: str | None = None) -> Any:
    """``table``'s rows that carry a mark up to ``upto``.

    The marks drive (they are few), each probing the table's primary key.
    """
    m = eval_marks
    on = sa.and_(table.c.source == m.c.source, table.c.id == m.c.id)
    return m.join(table, sa.and_(on, m.c.seq <= upto, m.c.entity == (entity or table.name)))


def _scope_ids(upto: int, today: date) -> list[sa.Select[Any]]:
    m = eval_marks
    sfc = contacts.alias("scope_sf_contact")
    parts: list[sa.Select[Any]] = [
        # the account a row was filed under before it moved
        sa.select(m.c.account_id).where(
            m.c.seq <= upto, m.c.account_id.is_not(None), _evaluation_mark(m.c.entity)
        ),
        # Salesforce accounts themselves; a Gainsight company through its Salesforce account
        sa.select(accounts.c.id)
        .select_from(_joined(accounts, upto))
        .where(accounts.c.source == System.SALESFORCE),
        sa.select(accounts.c.sf_account_id)
        .select_from(_joined(accounts, upto))
        .where(accounts.c.source == System.GAINSIGHT),
        # a contact: the account it is filed under, or itself without one (Salesforce)
        sa.select(sa.func.coalesce(contacts.c.account_id, contacts.c.id))
        .select_from(_joined(contacts, upto))
        .where(contacts.c.source == System.SALESFORCE),
        sa.select(contacts.c.account_id)
        .select_from(_joined(contacts, upto))
        .where(contacts.c.source == System.GAINSIGHT),
        # a Gainsight person: its Salesforce contact's account
        sa.select(sa.func.coalesce(sfc.c.account_id, sfc.c.id))
        .select_from(
            _joined(contacts, upto).join(
                sfc,
                sa.and_(sfc.c.source == System.SALESFORCE, sfc.c.id == contacts.c.sf_contact_id),
            )
        )
        .where(contacts.c.source == System.GAINSIGHT),
    ]
    for table in (tickets, opportunities, nps_responses, advocacy_asks):
        parts.append(sa.select(table.c.account_id).select_from(_joined(table, upto)))
    for table in (nps_responses, advocacy_asks):
        # an answer or ask counts for its contact too, filed where it may be
        c = contacts.alias(f"scope_of_{table.name}")
        parts.append(
            sa.select(sa.func.coalesce(c.c.account_id, c.c.id)).select_from(
                _joined(table, upto).join(
                    c, sa.and_(c.c.source == System.SALESFORCE, c.c.id == table.c.contact_id)
                )
            )
        )
    # verdicts that may change with time alone
    e = evaluations
    due = sa.and_(e.c.valid_until.is_not(None), e.c.valid_until <= today)
    parts.append(sa.select(e.c.entity_id).where(e.c.entity_type == "account", due))
    parts.append(
        sa.select(sa.func.coalesce(sfc.c.account_id, sfc.c.id))
        .select_from(
            e.join(sfc, sa.and_(sfc.c.source == System.SALESFORCE, sfc.c.id == e.c.entity_id))
        )
        .where(e.c.entity_type == "contact", due)
    )
    return parts


def fill_scope(conn: Connection, upto: int, today: date) -> int:
    """Fill ``eval_scope`` with what the marks up to ``upto`` and the clock reach; return its size.

    Ids are Salesforce account ids, and the ids of contacts without an account (the
    evaluation pages those by contact id).
    """
    conn.execute(eval_scope.delete())
    union = sa.union(*_scope_ids(upto, today)).subquery()
    ids = sa.select(union.c[0]).where(union.c[0].is_not(None))
    conn.execute(eval_scope.insert().from_select(["id"], ids))
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("ANALYZE eval_scope"))
    return int(conn.execute(sa.select(sa.func.count()).select_from(eval_scope)).scalar_one())


def scope_contact_ids() -> sa.CompoundSelect[Any]:
    """The ids of the contacts an incremental evaluation reaches (``eval_scope``).

    Those filed under an account in scope, and those listed themselves (contacts without an
    account). The scope drives, through the ``account_id`` index: tested row by row instead
    (``account_id IN scope OR ...``), SQLite reads every contact (6 s at 1M for a 1% scope).
    """
    c = sa.table("contacts", sa.column("id"), sa.column("account_id"))
    return sa.union_all(
        sa.select(c.c.id).select_from(eval_scope.join(c, c.c.account_id == eval_scope.c.id)),
        sa.select(eval_scope.c.id),
    )


def in_scope(c: Any) -> ColumnElement[bool]:
    """Contacts ``c`` an incremental evaluation reaches (see :func:`scope_contact_ids`)."""
    in_: ColumnElement[bool] = c.c.id.in_(scope_contact_ids())
    return in_


def consume(conn: Connection, upto: int) -> None:
    """Delete the input marks up to ``upto`` (in the transaction of their evaluation's end).

    The marks of changed CRM values are the writeback's (:func:`consume_crm`), the identity
    marks identity linking's (sync/identity.py).
    """
    conn.execute(
        eval_marks.delete().where(eval_marks.c.seq <= upto, _evaluation_mark(eval_marks.c.entity))
    )
    conn.execute(eval_scope.delete())


def crm_marked(table: sa.Table, link: Any, target: str, upto: int) -> sa.Select[Any]:
    """``link`` of ``table``'s records of ``target`` whose written fields' CRM values changed."""
    return (
        sa.select(link)
        .select_from(_joined(table, upto, CRM + table.name))
        .where(table.c.source == target)
    )


def crm_full(conn: Connection, upto: int) -> bool:
    """Whether a stream was read in full since the writeback's last diff (then: diff all)."""
    m = eval_marks
    return (
        conn.execute(
            sa.select(m.c.seq).where(m.c.seq <= upto, m.c.entity == CRM_FULL).limit(1)
        ).first()
        is not None
    )


def consume_crm(conn: Connection, upto: int) -> None:
    """Delete the CRM-value marks up to ``upto`` (in the writeback diff's transaction)."""
    conn.execute(
        eval_marks.delete().where(eval_marks.c.seq <= upto, eval_marks.c.entity.startswith(CRM))
    )


#: Where the digest of the policy and mappings of the last evaluation is kept (sync_state).
_INPUTS = ("evaluate", "inputs")


def saved_inputs_digest(conn: Connection) -> str | None:
    """The policy and mappings digest the current verdicts were computed with."""
    value = conn.execute(
        sa.select(sync_state.c.mapping_digest).where(
            sync_state.c.connector == _INPUTS[0], sync_state.c.stream == _INPUTS[1]
        )
    ).scalar()
    return str(value) if value is not None else None


def save_inputs_digest(conn: Connection, digest: str, now: datetime) -> None:
    """Record the digest of the policy and mappings an evaluation ran with."""
    upsert(
        conn,
        sync_state,
        [
            {
                "connector": _INPUTS[0],
                "stream": _INPUTS[1],
                "mapping_digest": digest,
                "updated_at": now,
            }
        ],
    )


#: Set (to anything) to evaluate and write back the whole store every cycle, as before change
#: tracking: the baseline the steady-state benchmark compares with (bench/steady_state.py).
FULL_CYCLES_ENV = "SYNC_FULL_CYCLES"


def incremental_enabled() -> bool:
    """Whether cycles evaluate and diff only what changed (the default)."""
    return not os.environ.get(FULL_CYCLES_ENV)
