"""The ranking: for each deal, the best advocates from other accounts, spreading the load.

Pure: frames in, suggestions out; no store, no CRM (the stage in :mod:`sync_service.match.stage`
reads the frames and stores the answer).

**Value.** An advocate's value on a deal is ``similarity x score / (1 + spreading x load)``:
similarity is the weight of the terms on which the advocate's account equals the deal's account,
out of all the weights (0..1); score is the evaluation's 0-100 score; load is how many deals
the advocate was proposed on earlier in the same run. Ties go to the higher similarity, then to
the higher score, then to the lower contact id, so a run on the same data gives the same answer.

**Memory and time.** Never a cross product of deals and contacts. All contacts of one account
share the account's terms, so candidates fall into *groups* (one per distinct tuple of term
values, a few hundred in a real org). For each batch of deals:

1. per group, its best ``depth`` candidates at the current loads, at most ``top_n`` per account
   (a deal never needs more than ``top_n`` from one account, and excluding the deal's own
   account then still leaves enough);
2. per distinct deal key (the tuple of the deal's account terms), the groups are bounded by
   ``similarity x their best value``; only the best ``depth`` groups can hold a deal's best
   ``depth`` candidates, so the pool of a key is at most ``depth x depth`` rows;
3. the deals of the batch are assigned one by one (a greedy assignment): each takes its best
   ``top_n`` from its key's pool, excluding its own account, at the loads as they are now, and
   adds one to the load of each advocate it took.

Memory is the candidates (one row per eligible, consented contact) plus one batch of deals.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

#: Prefix of the key columns: ``k_industry`` holds the account's industry as text.
KEY_PREFIX = "k_"


#: A heap entry: (-value, -similarity, -adjusted score, contact id, candidate index, similarity).
_Entry = tuple[float, float, float, str, int, float]


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
    account_id: str
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


@dataclass
class Ranker:
    """Ranks batches of deals against one candidate frame; the loads carry across batches.

    Args:
        candidates: one row per eligible, consented contact: ``contact_id``, ``account_id``,
            ``score`` and one ``k_<term>`` text column per term.
        weights: term -> weight.
        top_n: suggestions per deal.
        spreading: the load-spreading strength (0: none).
        depth: how many candidates per group and groups per key are kept (at least
            ``2 x top_n``; deeper spreads load better within a batch).
    """

    candidates: pl.DataFrame
    weights: Mapping[str, float]
    top_n: int
    spreading: float
    depth: int = 16
    pool_cap: int = 256
    loads: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.depth = max(self.depth, 4 * self.top_n)
        self.pool_cap = max(self.pool_cap, 4 * self.top_n)
        self.terms = list(self.weights)
        self.keys = [KEY_PREFIX + t for t in self.terms]
        total = float(sum(self.weights.values()))
        self.norm = {t: w / total for t, w in self.weights.items()}
        # Sorted by contact id, so ordinal ranks break ties the same way every run.
        cands = self.candidates.sort("contact_id").with_columns(
            pl.col("score").cast(pl.Float64).fill_null(0.0),
        )
        cands = cands.with_row_index("ci")
        gids = cands.select(self.keys).unique(maintain_order=True).with_row_index("gid")
        self.groups = gids
        self.cands = cands.join(gids, on=self.keys, how="left", nulls_equal=True)
        self.cands = self.cands.sort("ci")
        self.score = self.cands["score"].to_numpy()
        self.contact = self.cands["contact_id"].to_list()
        self.account = self.cands["account_id"].to_list()
        # Plain lists: the assignment reads them one value at a time, where numpy is slow.
        self.score = self.score.tolist()
        self.loads = [0.0] * len(self.cands)
        self.gid_of = self.cands["gid"].to_list()
        self.group_values = {row[0]: row[1:] for row in gids.select("gid", *self.keys).iter_rows()}

    def _pool(self) -> pl.DataFrame:
        """Per group, its best ``depth`` candidates at the current loads (``top_n`` per account)."""
        adj = np.asarray(self.score) / (1.0 + self.spreading * np.asarray(self.loads))
        return (
            self.cands.select("ci", "gid", "account_id")
            .with_columns(pl.Series("adj", adj))
            .filter(pl.col("adj").rank("ordinal", descending=True).over("account_id") <= self.top_n)
            .filter(pl.col("adj").rank("ordinal", descending=True).over("gid") <= self.depth)
        )

    def _similarity(self, deal_keys: pl.DataFrame) -> pl.DataFrame:
        """Deal key x group: the similarity and which terms matched (only where it can win)."""
        pairs = deal_keys.join(self.groups, how="cross", suffix="_c")
        sim = pl.lit(0.0)
        for term, key in zip(self.terms, self.keys, strict=True):
            hit = (pl.col(key) == pl.col(f"{key}_c")).fill_null(value=False)
            sim = sim + pl.when(hit).then(pl.lit(self.norm[term])).otherwise(0.0)
        return pairs.with_columns(sim.alias("sim")).select("dk", "gid", "sim")

    def rank(self, deals: pl.DataFrame) -> Iterator[Suggestion]:
        """Suggestions for a batch of deals (``opportunity_id``, ``account_id``, ``k_<term>``).

        Deals are assigned in the order given; each adds to the loads the next ones see.
        """
        if deals.is_empty() or self.cands.is_empty():
            return
        deal_keys = deals.select(self.keys).unique(maintain_order=True).with_row_index("dk")
        deals = deals.join(deal_keys, on=self.keys, how="left", nulls_equal=True)
        # A key's pool holds enough advocates for each of its deals to get fresh ones.
        sizes = deals.group_by("dk").agg(
            pl.min_horizontal(
                pl.lit(self.pool_cap), (pl.len() + 1) * self.top_n + self.top_n
            ).alias("size")
        )
        pool = self._pool()
        best = pool.group_by("gid").agg(pl.col("adj").max().alias("best"))
        sims = self._similarity(deal_keys).join(best, on="gid")
        # Only the groups whose best can make a key's pool matter.
        sims = sims.with_columns((pl.col("sim") * pl.col("best")).alias("bound")).filter(
            pl.col("bound").rank("ordinal", descending=True).over("dk") <= self.depth
        )
        pooled = (
            sims.select("dk", "gid", "sim")
            .join(pool.select("ci", "gid", "adj"), on="gid")
            .join(sizes, on="dk")
            .with_columns((pl.col("sim") * pl.col("adj")).alias("value"))
            .filter(pl.col("value").rank("ordinal", descending=True).over("dk") <= pl.col("size"))
        )
        heaps: dict[int, list[_Entry]] = {}
        for dk, ci, sim, adj, value in pooled.select("dk", "ci", "sim", "adj", "value").iter_rows():
            heaps.setdefault(dk, []).append((-value, -sim, -adj, self.contact[ci], ci, sim))
        for heap in heaps.values():
            heapq.heapify(heap)
        key_values = {row[0]: row[1:] for row in deal_keys.select("dk", *self.keys).iter_rows()}
        for opp_id, own_account, dk in deals.select(
            "opportunity_id", "account_id", "dk"
        ).iter_rows():
            yield from self._assign(str(opp_id), own_account, heaps.get(dk, []), key_values[dk])

    def _entry(self, ci: int, sim: float) -> _Entry:
        adj = self.score[ci] / (1.0 + self.spreading * self.loads[ci])
        return (-(sim * adj), -sim, -adj, self.contact[ci], ci, sim)

    def _assign(
        self,
        opp_id: str,
        own_account: str | None,
        heap: list[_Entry],
        deal_values: tuple[Any, ...],
    ) -> Iterator[Suggestion]:
        # A lazy heap: loads only grow, so a stored value is an upper bound; an entry whose
        # value fell is pushed back with its current value before it can be taken.
        taken: list[_Entry] = []
        skipped: list[_Entry] = []
        while heap and len(taken) < self.top_n:
            entry = heapq.heappop(heap)
            fresh = self._entry(entry[4], entry[5])
            if fresh[:3] != entry[:3]:
                heapq.heappush(heap, fresh)
                continue
            if self.account[entry[4]] == own_account:
                skipped.append(entry)
                continue
            taken.append(entry)
        for entry in skipped:
            heapq.heappush(heap, entry)
        for rank, (neg_value, _, _, contact, ci, sim) in enumerate(taken, start=1):
            self.loads[ci] += 1.0
            heapq.heappush(heap, self._entry(ci, sim))
            yield Suggestion(
                opportunity_id=opp_id,
                rank=rank,
                contact_id=contact,
                account_id=self.account[ci],
                score=round(-neg_value, 4),
                similarity=round(sim, 4),
                terms=self._matched(ci, deal_values),
            )

    def _matched(self, ci: int, deal_values: tuple[Any, ...]) -> dict[str, str]:
        row = self.group_values[self.gid_of[ci]]
        return {
            t: str(v)
            for t, v, mine in zip(self.terms, deal_values, row, strict=True)
            if v is not None and v == mine
        }
