"""The match stage: suggestions for every open deal, stored and queued for the Opportunity.

Reads from the store (after the evaluation) the open deals in keyset-paged batches; the
ranking (:mod:`sync_service.match.rank`) reads the candidates (contacts whose current verdict is
Eligible and whose ``available_for`` holds the matching's ask type) a group of equal account
terms at a time, only as deep as the answers reach (:mod:`sync_service.match.candidates`).
Memory holds one batch of deals, the candidates read and the loads, whatever the org's size.

Per batch, in one transaction:

* ``match_suggestions`` gets the deals' new rows (and loses their old ones);
* the Opportunity's suggestions field (the ``writeback.opportunity`` mapping) is compared with
  what was last confirmed written (``writeback_state``; before any write, the CRM's value read
  by the sync): a deal whose text changed gets an outbox row, a deal whose text did not loses
  any open one. No change, no API call.

After the batches, deals no longer matched (closed, below the threshold, deleted) lose their
rows, and their field is cleared if the service had written it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical.model import System
from sync_service.evaluate.features.reader_pragmas import reader_pragmas
from sync_service.match.candidates import NULL_GID, StoreCandidates, groups_table
from sync_service.match.config import MatchingRules
from sync_service.match.rank import KEY_PREFIX, Ranker, Suggestion
from sync_service.store.frames import read_frame
from sync_service.store.models import (
    accounts,
    contacts,
    evaluations,
    match_suggestions,
    opportunities,
    writeback_outbox,
    writeback_state,
)
from sync_service.writeback.outbox import DONE, OutboxChanges, load_open, load_written
from sync_service.writeback.targets import WritebackTargetLike
from sync_service.writeback.values import crm_values

SALESFORCE = System.SALESFORCE.value
#: The longest text written (a Long Text Area holds 32,768 characters; a few lines are far less).
MAX_TEXT = 32_000


@dataclass
class MatchCounts:
    """What one match run did."""

    deals: int = 0
    suggestions: int = 0
    without: int = 0
    enqueued: int = 0
    unchanged: int = 0
    cleared: int = 0
    removed: int = 0
    candidates: int = 0
    read: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_counts(self) -> dict[str, int]:
        """The run record's counts."""
        return {
            "deals": self.deals,
            "suggestions": self.suggestions,
            "deals_without": self.without,
            "candidates": self.candidates,
            "candidates_read": self.read,
            "enqueued": self.enqueued,
            "unchanged": self.unchanged,
            "cleared": self.cleared,
            "removed": self.removed,
        }


def _deal_filter(rules: MatchingRules) -> list[Any]:
    o = opportunities
    f = rules.model.opportunities
    where: list[Any] = [o.c.source == SALESFORCE, o.c.deleted.is_(False), o.c.is_closed.is_(False)]
    if f.min_amount > 0:
        where.append(o.c.amount >= f.min_amount)
    if f.stages:
        where.append(o.c.stage.in_(f.stages))
    if f.exclude_stages:
        where.append(sa.or_(o.c.stage.is_(None), o.c.stage.not_in(f.exclude_stages)))
    return where


def open_deals(
    conn: Connection, rules: MatchingRules, batch_size: int, groups: StoreCandidates
) -> Iterator[pl.DataFrame]:
    """The deals that get suggestions, ``batch_size`` at a time in id order (keyset paged).

    Columns ``opportunity_id``, ``account_id`` and the terms of the deal's account
    (``k_<term>``, all NULL when the store lacks the account), found in ``groups``'s table.
    """
    o, g = opportunities, groups_table
    last = ""
    types = {"opportunity_id": pl.String(), "account_id": pl.String(), "gid": pl.Int64()}
    keys = [KEY_PREFIX + t for t in rules.model.terms]
    values = pl.DataFrame(
        [(gid, *v) for gid, v in groups.by_gid.items()],
        schema={"gid": pl.Int64(), **dict.fromkeys(keys, pl.String())},
        orient="row",
    )
    while True:
        stmt = (
            sa.select(
                o.c.id.label("opportunity_id"),
                o.c.account_id,
                sa.func.coalesce(g.c.gid, NULL_GID).label("gid"),
            )
            .select_from(o)
            .outerjoin(g, g.c.account_id == o.c.account_id)
            .where(*_deal_filter(rules), o.c.id > last)
            .order_by(o.c.id)
            .limit(batch_size)
        )
        frame = read_frame(conn, stmt, types)
        if frame.is_empty():
            return
        # a left join keeps the deals' order (id order, the order they are assigned in)
        yield frame.join(values, on="gid", how="left", maintain_order="left").drop("gid")
        last = str(frame["opportunity_id"][-1])


def is_open_deal(conn: Connection, rules: MatchingRules, opportunity_id: str) -> bool:
    """Whether the deal passes the matching's filters now."""
    stmt = sa.select(opportunities.c.id).where(
        *_deal_filter(rules), opportunities.c.id == opportunity_id
    )
    return conn.execute(stmt).first() is not None


def render(
    suggestions: Sequence[Suggestion],
    names: Mapping[str, str],
    account_names: Mapping[str, str],
    next_available: Mapping[str, date | None],
    today: date,
) -> str | None:
    """The field's text: one line per advocate (None: nothing to propose, the field is cleared).

    ``1. Ana Lopez (Globex Health): same industry (Healthcare), region (EMEA); available now``
    """
    lines = []
    for s in suggestions:
        why = ", ".join(f"{t.replace('_', ' ')} ({v})" for t, v in s.terms.items())
        why = f"same {why}" if why else "no shared terms (best score elsewhere)"
        nxt = next_available.get(s.contact_id)
        when = "available now" if nxt is None or nxt <= today else f"available from {nxt}"
        who = names.get(s.contact_id) or s.contact_id
        account = account_names.get(s.account_id or "") or s.account_id
        lines.append(f"{s.rank}. {who} ({account}): {why}; {when}")
    return "\n".join(lines)[:MAX_TEXT] if lines else None


def _who(conn: Connection, ids: Iterable[str]) -> tuple[dict[str, str], dict[str, date | None]]:
    """The names and next available dates of the contacts ``ids`` (the suggested ones)."""
    c, e = contacts, evaluations
    ids = list(set(ids))
    names: dict[str, str] = {}
    available: dict[str, date | None] = {}
    for start in range(0, len(ids), 5000):
        rows = conn.execute(
            sa.select(c.c.id, c.c.first_name, c.c.last_name, e.c.next_available)
            .outerjoin(e, sa.and_(e.c.entity_type == "contact", e.c.entity_id == c.c.id))
            .where(c.c.source == SALESFORCE, c.c.id.in_(ids[start : start + 5000]))
        )
        for cid, first, last, nxt in rows:
            names[str(cid)] = " ".join(p for p in (first, last) if p)
            available[str(cid)] = nxt
    return names, available


def _account_names(conn: Connection, ids: Iterable[str | None]) -> dict[str, str]:
    """The names of the accounts ``ids`` (the suggested advocates')."""
    a = accounts
    wanted = list({i for i in ids if i is not None})
    out: dict[str, str] = {}
    for start in range(0, len(wanted), 5000):
        rows = conn.execute(
            sa.select(a.c.id, a.c.name).where(
                a.c.source == SALESFORCE,
                a.c.deleted.is_(False),
                a.c.id.in_(wanted[start : start + 5000]),
            )
        )
        out.update((str(i), n) for i, n in rows if n)
    return out


def _crm_values(conn: Connection, ids: Sequence[str], crm_field: str) -> dict[str, Any]:
    """The field's value the sync last read from the CRM, per deal (``extra['_crm']``)."""
    o = opportunities
    out: dict[str, Any] = {}
    rows = conn.execute(
        sa.select(o.c.id, o.c.extra).where(o.c.source == SALESFORCE, o.c.id.in_(list(ids)))
    )
    for oid, extra in rows:
        crm = crm_values(extra)
        if crm_field in crm:
            out[str(oid)] = crm[crm_field]
    return out


def _queue_texts(
    conn: Connection,
    target: WritebackTargetLike,
    desired: Mapping[str, str | None],
    counts: MatchCounts,
    version: str,
    now: datetime,
    run_id: int | None,
) -> None:
    """Queue each deal whose text differs from what the CRM holds; drop stale open rows."""
    crm_field = next(iter(target.fields.values()))
    ids = list(desired)
    written = load_written(conn, target.target, target.object_name, ids)
    open_rows = load_open(conn, target.target, target.object_name, ids)
    crm = _crm_values(conn, [i for i in ids if (i, crm_field) not in written], crm_field)
    out = OutboxChanges(target.target, target.object_name, run_id, now)
    for opp_id, text in desired.items():
        last = written.get((opp_id, crm_field))
        current = last[0] if last is not None else crm.get(opp_id)
        existing = open_rows.get(opp_id)
        if (current or None) == (text or None):
            counts.unchanged += 1
            out.drop(existing)
            continue
        if out.put(opp_id, {crm_field: text}, {crm_field: current}, version, existing):
            counts.enqueued += 1
            if text is None:
                counts.cleared += 1
    out.flush(conn)


def _store(
    conn: Connection,
    batch_ids: Sequence[str],
    found: Sequence[Suggestion],
    now: datetime,
    run_id: int | None,
) -> None:
    m = match_suggestions
    conn.execute(sa.delete(m).where(m.c.opportunity_id.in_(list(batch_ids))))
    if found:
        conn.execute(
            sa.insert(m),
            [
                {
                    "opportunity_id": s.opportunity_id,
                    "rank": s.rank,
                    "contact_id": s.contact_id,
                    "account_id": s.account_id,
                    "score": s.score,
                    "similarity": s.similarity,
                    "terms": s.terms,
                    "computed_at": now,
                    "run_id": run_id,
                }
                for s in found
            ],
        )


def match_all(
    engine: Engine,
    rules: MatchingRules,
    *,
    target: WritebackTargetLike | None,
    now: datetime,
    run_id: int | None,
    batch_size: int = 5000,
) -> MatchCounts:
    """Rank every open deal, store the suggestions, queue the changed texts.

    Args:
        engine: the store.
        rules: the matching rules.
        target: the Opportunity's suggestions field (None: store only, write nothing).
        now: the run's time (``today`` for "available now").
        run_id: the run, stamped on every row (rows of other runs are removed at the end).
        batch_size: deals per batch (memory holds one batch, not every candidate).
    """
    counts = MatchCounts()
    version = f"matching:{rules.hash[:12]}"
    today = now.date()
    # SQLite: a small page cache on the reader; its one full scan (the groups' bounds) would
    # fill the usual 64 MiB with pages never read again (57 MiB of peak RSS at 1M contacts).
    with engine.connect() as reader, reader_pragmas(reader):
        source = StoreCandidates(reader, rules)
        try:
            counts.candidates = source.count
            ranker = Ranker(source, rules.weights, rules.top_n, rules.model.load_spreading)
            for deals in open_deals(reader, rules, batch_size, source):
                found = list(ranker.rank(deals))
                ids = deals["opportunity_id"].to_list()
                counts.deals += len(ids)
                counts.suggestions += len(found)
                by_deal: dict[str, list[Suggestion]] = {i: [] for i in ids}
                for s in found:
                    by_deal[s.opportunity_id].append(s)
                counts.without += sum(1 for v in by_deal.values() if not v)
                with engine.begin() as conn:
                    _store(conn, ids, found, now, run_id)
                    if target is not None:
                        names, available = _who(conn, (s.contact_id for s in found))
                        account_names = _account_names(conn, (s.account_id for s in found))
                        desired = {
                            i: render(v, names, account_names, available, today)
                            for i, v in by_deal.items()
                        }
                        _queue_texts(conn, target, desired, counts, version, now, run_id)
            counts.read = ranker.read
        finally:
            source.close()
    with engine.begin() as conn:
        m = match_suggestions
        stale = sa.or_(m.c.run_id.is_(None), m.c.run_id != run_id) if run_id else sa.false()
        counts.removed = conn.execute(sa.delete(m).where(stale)).rowcount or 0
    if target is not None:
        _clear_closed(engine, rules, target, counts, version, now, run_id, batch_size)
    return counts


def _clear_closed(
    engine: Engine,
    rules: MatchingRules,
    target: WritebackTargetLike,
    counts: MatchCounts,
    version: str,
    now: datetime,
    run_id: int | None,
    batch_size: int,
) -> None:
    """Clear the field on deals no longer matched that hold (or wait to get) suggestions.

    Two sources, each keyset paged: the deals whose last confirmed text is not empty, and the
    deals with an open outbox row (a text queued while the CRM was unreachable must not arrive
    after the deal closed).
    """
    crm_field = next(iter(target.fields.values()))
    ws, ob = writeback_state, writeback_outbox
    written = sa.select(ws.c.record_id, ws.c.value).where(
        ws.c.target == target.target,
        ws.c.object_name == target.object_name,
        ws.c.field == crm_field,
    )
    queued = sa.select(ob.c.record_id, sa.literal(1)).where(
        ob.c.target == target.target,
        ob.c.object_name == target.object_name,
        ob.c.state != DONE,
    )
    for stmt, key in ((written, ws.c.record_id), (queued, ob.c.record_id)):
        last = ""
        while True:
            with engine.begin() as conn:
                rows = conn.execute(stmt.where(key > last).order_by(key).limit(batch_size)).all()
                if not rows:
                    break
                last = str(rows[-1][0])
                held = [str(r[0]) for r in rows if r[1]]
                if not held:
                    continue
                live = {
                    str(r[0])
                    for r in conn.execute(
                        sa.select(opportunities.c.id).where(
                            *_deal_filter(rules), opportunities.c.id.in_(held)
                        )
                    )
                }
                gone = [i for i in held if i not in live]
                if gone:
                    _queue_texts(conn, target, dict.fromkeys(gone), counts, version, now, run_id)


def suggestions_for(conn: Connection, opportunity_id: str) -> list[dict[str, Any]]:
    """The stored suggestions of one deal, best first (``match`` and the Ask API).

    Each is ``{"contact_id", "account_id", "score", "terms"}``; ``terms`` maps each matching
    term to the value the deal's account and the advocate's share.
    """
    m = match_suggestions
    rows = conn.execute(
        sa.select(m.c.contact_id, m.c.account_id, m.c.score, m.c.terms)
        .where(m.c.opportunity_id == opportunity_id)
        .order_by(m.c.rank)
    ).mappings()
    return [
        {
            "contact_id": r["contact_id"],
            "account_id": r["account_id"],
            "score": r["score"],
            "terms": dict(r["terms"] or {}),
        }
        for r in rows
    ]


def known_opportunity(conn: Connection, opportunity_id: str) -> bool:
    """Whether the store holds this deal (an unknown id is a 404 / exit 2)."""
    o = opportunities
    stmt = sa.select(o.c.id).where(o.c.id == opportunity_id, o.c.deleted.is_(False))
    return conn.execute(stmt).first() is not None
