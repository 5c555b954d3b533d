"""The ranking: for each deal, the best advocates from other accounts, spreading the load.

Pure: candidates come from a :class:`CandidateSource` a page at a time (the stage's source
reads the store, :class:`FrameSource` holds a frame), suggestions go out; no CRM.

**Value.** An advocate's value on a deal is ``similarity x score / (1 + spreading x load)``:
similarity is the weight of the terms on which the advocate's account equals the deal's account,
out of all the weights (0..1); score is the evaluation's 0-100 score; load is how many deals
the advocate was proposed on earlier in the same run. Ties go to the higher similarity, then to
the higher score after spreading, then to the lower contact id, so a run on the same data gives
the same answer.

**The answer is the exhaustive one.** Deals are taken in the order given; each gets the
``top_n`` best advocates by that order over *every* candidate not from the deal's own account,
at the loads left by the deals before it, and adds one to the load of each advocate it got.
``tests/match/test_rank.py`` checks it against a plain twin that scores every pair.

**Memory and time: never all the candidates.** All contacts of one account share the
account's terms, so candidates fall into *groups* (one per distinct tuple of term values, a few
hundred in a real org). The source serves a group's candidates best score first, a page at a
time, and knows a bound on each group's best score. Deals with the same terms (a *key*) share
one lazy heap, whose entries are never worse than the truth (loads only grow, so values only
fall):

* a candidate read from its group, at its value when pushed (popped: if its value fell it is
  pushed back at its current value, otherwise it is the best left);
* per group opened, a *frontier* standing for the group's candidates not read yet: the next
  one's score with no load, which none of them can beat (popped: that candidate is read);
* one *opener* standing for the groups not opened yet, at the best bound among them (popped:
  that group gets its frontier).

So a group is read only as deep as some deal's answer reaches into it, and only the groups
similar enough to matter are opened. Memory is the candidates read (the first pages of the
groups that matter, about ``deals x top_n`` with the spreading, whatever the org's size), the
loads of the advocates proposed, and one batch of deals.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

#: Prefix of the key columns: ``k_industry`` holds the account's industry as text.
KEY_PREFIX = "k_"

#: A candidate as a source serves it: (contact id, account id, score).
Row = tuple[str, str | None, float]
#: The term values of an account (``None``: unknown, never matches), in the terms' order.
Values = tuple[str | None, ...]

# Heap entries, compared as tuples: (-value, -similarity, -score after spreading, contact id,
# kind, score, account, similarity, group). A frontier and the opener carry the contact id ""
# so that they come before a read candidate of the same value, which then ties as it should,
# on its own contact id (two read entries never share a contact id: each is read once a key).
_READ, _FRONTIER, _OPENER = 0, 1, 2
_Entry = tuple[float, float, float, str, int, float, str | None, float, int]

#: Rows per page: the first read of a group, and the most in one read (each next page of a
#: group is as large as what it read so far, between the two).
FIRST_PAGE = 64
MAX_PAGE = 4096


@dataclass(frozen=True)
class Group:
    """Accounts with equal terms, and so their candidates.

    Attributes:
        gid: the source's id of the group.
        values: the term values, in the terms' order.
        top: at least the best score among its candidates (a bound, need not be exact).
    """

    gid: int
    values: Values
    top: float


class CandidateSource(Protocol):
    """Where the ranking reads candidates: the groups, then a group a page at a time."""

    def groups(self) -> Sequence[Group]:
        """Every group holding candidates."""
        ...

    def page(self, gid: int, after: Row | None, limit: int) -> list[Row]:
        """Up to ``limit`` candidates of group ``gid``, best score first, after ``after``.

        Args:
            gid: the group.
            after: the last row of the previous page (None: from the best).
            limit: the most rows returned; fewer means the group has no more.

        Candidates of equal score come in an order of the source's choosing, the same on
        every call (the ranking breaks those ties itself).
        """
        ...


@dataclass(frozen=True)
class Suggestion:
    """One proposed advocate on one deal.

    Attributes:
        opportunity_id: the deal.
        rank: 1 = best.
        contact_id: the advocate.
        account_id: the advocate's account.
        score: the value the advocate was ranked by (similarity x score, after spreading).
        similarity: 0..1, the share of the term weights that match.
        terms: the matching terms with the shared value (``{"industry": "Healthcare"}``).
    """

    opportunity_id: str
    rank: int
    contact_id: str
    account_id: str | None
    score: float
    similarity: float
    terms: dict[str, str]


def band_of(column: pl.Expr, bounds: Sequence[float]) -> pl.Expr:
    """The size band label of ``column`` cut at ``bounds`` (NULL stays NULL)."""
    labels = [f"<{bounds[0]:g}"]
    labels += [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(bounds)]
    labels.append(f">={bounds[-1]:g}")
    expr: pl.Expr = pl.lit(labels[-1])
    for bound, label in reversed(list(zip(bounds, labels, strict=False))):
        expr = pl.when(column < bound).then(pl.lit(label)).otherwise(expr)
    return pl.when(column.is_null()).then(pl.lit(None, pl.String)).otherwise(expr)


def similarity(norm: Sequence[float], deal: Values, group: Values) -> float:
    """The weight (out of 1) of the terms on which ``group`` equals ``deal``; NULL never matches.

    Summed in the terms' order, so the same pair always gives the same float.
    """
    sim = 0.0
    for weight, mine, theirs in zip(norm, deal, group, strict=True):
        if mine is not None and mine == theirs:
            sim += weight
    return sim


@dataclass
class _Key:
    """The state shared by the deals with the same terms: their heap, the groups' order."""

    values: Values
    order: list[int]  # the groups, best bound first; the first ``opened`` have a frontier
    heap: list[_Entry]
    opened: int = 0
    pos: dict[int, int] = field(default_factory=dict)  # group -> its next row not read


class FrameSource:
    """A :class:`CandidateSource` over a frame held in memory (tests, small stores).

    Args:
        candidates: one row per candidate: ``contact_id``, ``account_id``, ``score`` (NULL
            is 0) and one ``k_<term>`` text column per term, in the terms' order.
        terms: the terms.
    """

    def __init__(self, candidates: pl.DataFrame, terms: Sequence[str]) -> None:
        keys = [KEY_PREFIX + t for t in terms]
        frame = candidates.with_columns(pl.col("score").cast(pl.Float64).fill_null(0.0)).sort(
            ["score", "contact_id"], descending=[True, False]
        )
        self._rows: dict[Values, list[Row]] = {}
        for contact, account, score, *values in frame.select(
            "contact_id", "account_id", "score", *keys
        ).iter_rows():
            self._rows.setdefault(tuple(values), []).append((contact, account, score))
        self._groups = [
            Group(gid, values, rows[0][2]) for gid, (values, rows) in enumerate(self._rows.items())
        ]
        self._by_gid = [self._rows[g.values] for g in self._groups]

    def groups(self) -> Sequence[Group]:
        """Every distinct tuple of term values among the candidates."""
        return self._groups

    def page(self, gid: int, after: Row | None, limit: int) -> list[Row]:
        """The group's rows after ``after`` (sorted by score, then contact id)."""
        rows = self._by_gid[gid]
        start = 0
        if after is not None:
            start = bisect.bisect_right(rows, (-after[2], after[0]), key=lambda r: (-r[2], r[0]))
        return rows[start : start + limit]


class Ranker:
    """Ranks batches of deals against a source of candidates; the loads carry across batches.

    Args:
        source: the candidates, by group.
        weights: term -> weight, in the order of the source's values.
        top_n: suggestions per deal.
        spreading: the load-spreading strength (0: none).
        first_page: rows of a group's first read; later reads double, up to ``max_page``
            (the answer does not depend on either: tests read a row at a time).
        max_page: the most rows of one read.
    """

    def __init__(
        self,
        source: CandidateSource,
        weights: Mapping[str, float],
        top_n: int,
        spreading: float,
        *,
        first_page: int = FIRST_PAGE,
        max_page: int = MAX_PAGE,
    ) -> None:
        self.source = source
        self.first_page = first_page
        self.max_page = max_page
        self.top_n = top_n
        self.spreading = spreading
        self.terms = list(weights)
        self.keys = [KEY_PREFIX + t for t in self.terms]
        total = float(sum(weights.values()))
        self.norm = [weights[t] / total for t in self.terms]
        self.groups = {g.gid: g for g in source.groups()}
        #: Proposals so far, per advocate proposed (only those: the rest are at 0).
        self.loads: dict[str, float] = {}
        #: Candidates read (rows) and reads made (pages), for the run's figures.
        self.read = 0
        self.pages = 0
        self._rows: dict[int, list[Row]] = {}
        self._complete: set[int] = set()
        self._by_key: dict[Values, _Key] = {}

    def rank(self, deals: pl.DataFrame) -> Iterator[Suggestion]:
        """Suggestions for a batch of deals (``opportunity_id``, ``account_id``, ``k_<term>``).

        Deals are assigned in the order given; each adds to the loads the next ones see.
        """
        if deals.is_empty() or not self.groups:
            return
        for opp_id, own_account, *values in deals.select(
            "opportunity_id", "account_id", *self.keys
        ).iter_rows():
            yield from self._assign(str(opp_id), own_account, self._key(tuple(values)))

    def _key(self, values: Values) -> _Key:
        key = self._by_key.get(values)
        if key is None:
            bounds = []
            for g in self.groups.values():
                sim = similarity(self.norm, values, g.values)
                bounds.append(((-(sim * g.top), -sim, -g.top), g.gid))
            bounds.sort()
            key = _Key(values, [gid for _, gid in bounds], [])
            self._push_opener(key)
            self._by_key[values] = key
        return key

    def _push_opener(self, key: _Key) -> None:
        if key.opened < len(key.order):
            g = self.groups[key.order[key.opened]]
            sim = similarity(self.norm, key.values, g.values)
            entry = (-(sim * g.top), -sim, -g.top, "", _OPENER, 0.0, None, sim, 0)
            heapq.heappush(key.heap, entry)

    def _push_frontier(self, key: _Key, gid: int, sim: float) -> None:
        row = self._row(gid, key.pos[gid])
        if row is not None:
            score = row[2]
            heapq.heappush(
                key.heap, (-(sim * score), -sim, -score, "", _FRONTIER, 0.0, None, sim, gid)
            )

    def _row(self, gid: int, i: int) -> Row | None:
        """Row ``i`` of group ``gid`` (best first), read from the source when first needed."""
        rows = self._rows.setdefault(gid, [])
        if i >= len(rows) and gid not in self._complete:
            limit = min(self.max_page, max(self.first_page, len(rows)))
            page = self.source.page(gid, rows[-1] if rows else None, limit)
            self.pages += 1
            self.read += len(page)
            rows.extend(page)
            if len(page) < limit:
                self._complete.add(gid)
        return rows[i] if i < len(rows) else None

    def _entry(
        self, contact: str, score: float, account: str | None, sim: float, gid: int
    ) -> _Entry:
        adj = score / (1.0 + self.spreading * self.loads.get(contact, 0.0))
        return (-(sim * adj), -sim, -adj, contact, _READ, score, account, sim, gid)

    def _assign(self, opp_id: str, own_account: str | None, key: _Key) -> Iterator[Suggestion]:
        heap = key.heap
        taken: list[_Entry] = []
        skipped: list[_Entry] = []
        while heap and len(taken) < self.top_n:
            entry = heapq.heappop(heap)
            kind, sim, gid = entry[4], entry[7], entry[8]
            if kind == _OPENER:
                gid = key.order[key.opened]
                key.opened += 1
                key.pos[gid] = 0
                self._push_frontier(key, gid, sim)
                self._push_opener(key)
                continue
            if kind == _FRONTIER:
                i = key.pos[gid]
                key.pos[gid] = i + 1
                contact, account, score = self._rows[gid][i]
                heapq.heappush(heap, self._entry(contact, score, account, sim, gid))
                self._push_frontier(key, gid, sim)
                continue
            fresh = self._entry(entry[3], entry[5], entry[6], sim, gid)
            if fresh[:3] != entry[:3]:
                heapq.heappush(heap, fresh)  # proposed elsewhere since: worth less now
                continue
            if entry[6] == own_account:
                skipped.append(entry)
                continue
            taken.append(entry)
        for entry in skipped:
            heapq.heappush(heap, entry)
        for rank, entry in enumerate(taken, start=1):
            contact, score, account, sim, gid = entry[3], entry[5], entry[6], entry[7], entry[8]
            self.loads[contact] = self.loads.get(contact, 0.0) + 1.0
            heapq.heappush(heap, self._entry(contact, score, account, sim, gid))
            yield Suggestion(
                opportunity_id=opp_id,
                rank=rank,
                contact_id=contact,
                account_id=account,
                score=round(-entry[0], 4),
                similarity=round(sim, 4),
                terms=self._matched(key.values, self.groups[gid].values),
            )

    def _matched(self, deal: Values, group: Values) -> dict[str, str]:
        return {
            t: str(v)
            for t, v, theirs in zip(self.terms, deal, group, strict=True)
            if v is not None and v == theirs
        }
