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
time, with a bound on each group's best score. Within a group every deal orders candidates the
same way (by score after spreading, then contact id: the similarity is the group's), so:

* each group read so far keeps its candidates read, in that order (a sorted list, shared by
  all deals); its unread ones can beat none of them while the last score read is lower;
* deals with the same terms (a *key*) share a heap with one entry per group opened: never
  worse than the group's best now (loads only grow, so a group's best only gets worse; an
  entry found stale is pushed back as it is now), plus one *opener* for the groups not opened
  yet, at the best bound among them;
* a deal takes from the heap; a group it takes from moves to the deal's own small heap, which
  walks down that group's order; after the deal, the loads of the advocates it got grow and
  the groups it touched go back to the key's heap at their best.

So a group is read only as deep as some deal's answer reaches into it, only the groups similar
enough to matter are opened, and a candidate is held once whatever the keys. Memory is the
candidates read (about the groups' first pages, plus ``deals x top_n`` with the spreading,
whatever the org's size), the loads of the advocates proposed, a heap entry per key and group
opened, and one batch of deals.
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

# A key's heap entry: (-value, -similarity, -score after spreading, contact id, kind, gid or
# the opener's index). An opener and a group not looked at yet carry the contact id "", so that
# they come before a candidate of the same value, which then ties on its own contact id.
_GROUP, _OPENER = 0, 1
_Entry = tuple[float, float, float, str, int, int]
#: A group's candidate, in the group's order: (-score after spreading, contact id, score, account)
_Member = tuple[float, str, float, str | None]

#: Rows per page: the first read of a group, and the most in one read (each next page of a
#: group is as large as what it read so far, between the two).
FIRST_PAGE = 256
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
    order: list[int]  # the groups, best bound first; the first ``opened`` are in the heap
    heap: list[_Entry]
    opened: int = 0


@dataclass
class _Group:
    """A group's candidates read so far, best first at the current loads."""

    values: Values
    members: list[_Member] = field(default_factory=list)
    last: Row | None = None  # the last row read (the next page starts after it)
    complete: bool = False  # every candidate read


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
        self._read: dict[int, _Group] = {}
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
            heapq.heappush(key.heap, (-(sim * g.top), -sim, -g.top, "", _OPENER, key.opened))

    def _group(self, gid: int) -> _Group:
        group = self._read.get(gid)
        if group is None:
            group = self._read[gid] = _Group(self.groups[gid].values)
        return group

    def _member(self, group: _Group, gid: int, i: int) -> _Member | None:
        """The ``i``-th best candidate of the group now (None: it has fewer).

        Read from the source until it is certain: an unread candidate scores at most the last
        score read (and has no load), so a member scoring more after spreading beats it; at
        equal scores the contact ids decide, and the source's order of them may not be ours.
        """
        members = group.members
        while not group.complete and (
            i >= len(members) or group.last is None or -members[i][0] <= group.last[2]
        ):
            limit = min(self.max_page, max(self.first_page, len(members)))
            page = self.source.page(gid, group.last, limit)
            self.pages += 1
            self.read += len(page)
            if page:
                group.last = page[-1]
                members.extend(
                    (-score, contact, score, account) for contact, account, score in page
                )
                members.sort()
            group.complete = len(page) < limit
        return members[i] if i < len(members) else None

    def _entry(self, member: _Member, sim: float, gid: int) -> _Entry:
        adj = -member[0]
        return (-(sim * adj), -sim, -adj, member[1], _GROUP, gid)

    def _assign(self, opp_id: str, own_account: str | None, key: _Key) -> Iterator[Suggestion]:
        heap = key.heap
        # The groups this deal took from walk down their order here (exact entries, with
        # the member's index); the key's heap holds the others, as bounds.
        mine: list[tuple[_Entry, int]] = []
        taken: list[tuple[_Member, float, int]] = []
        touched: dict[int, float] = {}
        while len(taken) < self.top_n:
            if mine and (not heap or mine[0][0][:4] < heap[0][:4]):
                entry, i = heapq.heappop(mine)
                gid, sim = entry[5], -entry[1]
                group = self._read[gid]
                member = group.members[i]
                if member[3] != own_account:
                    taken.append((member, sim, gid))
                nxt = self._member(group, gid, i + 1)
                if nxt is not None:
                    heapq.heappush(mine, (self._entry(nxt, sim, gid), i + 1))
                continue
            if not heap:
                break
            entry = heapq.heappop(heap)
            sim = -entry[1]
            if entry[4] == _OPENER:
                key.opened += 1
                g = self.groups[key.order[entry[5]]]
                heapq.heappush(heap, (entry[0], entry[1], entry[2], "", _GROUP, g.gid))
                self._push_opener(key)
                continue
            gid = entry[5]
            best = self._member(self._group(gid), gid, 0)
            if best is None:
                continue  # no candidate left in the group
            fresh = self._entry(best, sim, gid)
            if fresh[:4] != entry[:4]:
                heapq.heappush(heap, fresh)  # worse now (proposed elsewhere since)
                continue
            touched[gid] = sim
            heapq.heappush(mine, (fresh, 0))
        results = []
        for rank, (member, sim, gid) in enumerate(taken, start=1):
            results.append(
                Suggestion(
                    opportunity_id=opp_id,
                    rank=rank,
                    contact_id=member[1],
                    account_id=member[3],
                    score=round(sim * -member[0], 4),
                    similarity=round(sim, 4),
                    terms=self._matched(key.values, self.groups[gid].values),
                )
            )
            self._load(self._read[gid], member)
        for gid, sim in touched.items():
            best = self._member(self._read[gid], gid, 0)
            if best is not None:
                heapq.heappush(heap, self._entry(best, sim, gid))
        yield from results

    def _load(self, group: _Group, member: _Member) -> None:
        """One more proposal for ``member``: it moves down its group's order."""
        contact, score = member[1], member[2]
        load = self.loads.get(contact, 0.0) + 1.0
        self.loads[contact] = load
        members = group.members
        del members[bisect.bisect_left(members, member)]
        bisect.insort(
            members, (-(score / (1.0 + self.spreading * load)), contact, score, member[3])
        )

    def _matched(self, deal: Values, group: Values) -> dict[str, str]:
        return {
            t: str(v)
            for t, v, theirs in zip(self.terms, deal, group, strict=True)
            if v is not None and v == theirs
        }
