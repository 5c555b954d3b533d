"""The ranking: similarity x score, never the deal's own account, load spread across deals."""

from __future__ import annotations

import itertools
import random

import polars as pl
import pytest

from sync_service.match.rank import FrameSource, Ranker, band_of

WEIGHTS = {"industry": 3.0, "region": 2.0}


def _ranker(cands: pl.DataFrame, top_n: int, spreading: float) -> Ranker:
    return Ranker(FrameSource(cands, list(WEIGHTS)), WEIGHTS, top_n=top_n, spreading=spreading)


def _candidates(rows: list[tuple[str, str, float, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["contact_id", "account_id", "score", "k_industry", "k_region"],
        orient="row",
    )


def _deals(rows: list[tuple[str, str, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["opportunity_id", "account_id", "k_industry", "k_region"], orient="row"
    )


CANDIDATES = _candidates(
    [
        ("c1", "a1", 90, "Health", "EMEA"),  # same industry and region
        ("c2", "a2", 100, "Retail", "EMEA"),  # region only
        ("c3", "a3", 60, "Health", "EMEA"),  # same as c1, lower score
        ("c4", "a4", 100, "Health", "APAC"),  # industry only
        ("c5", "deal", 100, "Health", "EMEA"),  # the deal's own account
    ]
)


def test_ranked_by_similarity_times_score_and_never_from_the_deals_own_account() -> None:
    ranker = _ranker(CANDIDATES, top_n=3, spreading=0.0)
    found = list(ranker.rank(_deals([("o1", "deal", "Health", "EMEA")])))
    assert [(s.contact_id, s.rank) for s in found] == [("c1", 1), ("c3", 2), ("c4", 3)]
    # c1: 1.0 x 90; c3: 1.0 x 60 and c4: 0.6 x 100 tie, the more similar first; c2: 0.4 x 100
    assert [s.score for s in found] == [90.0, 60.0, 60.0]
    assert found[0].terms == {"industry": "Health", "region": "EMEA"}
    assert found[2].terms == {"industry": "Health"}
    assert all(s.account_id != "deal" for s in found)


def test_load_spreading_moves_an_advocate_down_after_each_proposal() -> None:
    deals = _deals([(f"o{i}", "x", "Health", "EMEA") for i in range(4)])
    same = list(_ranker(CANDIDATES, top_n=1, spreading=0.0).rank(deals))
    assert {s.contact_id for s in same} == {"c5"}  # no spreading: one person on every deal
    spread = list(_ranker(CANDIDATES, top_n=1, spreading=1.0).rank(deals))
    # c5 100 -> 50 after one proposal; c1 90 -> 45; then c3 (60, same terms) before c4 (60)
    assert [s.contact_id for s in spread] == ["c5", "c1", "c3", "c4"]


def test_a_null_term_never_matches_and_a_deal_without_candidates_gets_none() -> None:
    ranker = _ranker(CANDIDATES, top_n=2, spreading=0.0)
    found = list(ranker.rank(_deals([("o1", "zz", None, "EMEA")])))
    assert [s.contact_id for s in found] == ["c2", "c5"]  # region only: 0.4 x 100 each
    assert found[0].terms == {"region": "EMEA"}
    empty = _ranker(CANDIDATES.clear(), top_n=2, spreading=0.0)
    assert list(empty.rank(_deals([("o1", "zz", "Health", "EMEA")]))) == []


def _brute(cands: pl.DataFrame, deal: tuple[str, str, str, str], top_n: int) -> list[str]:
    """The plain twin: every candidate scored for the deal, sorted, own account excluded."""
    _, acct, ind, reg = deal
    scored = []
    for c, a, score, ci, cr in cands.iter_rows():
        if a == acct:
            continue
        sim = (3.0 * (ci == ind) + 2.0 * (cr == reg)) / 5.0
        scored.append((-(sim * score), -sim, -score, c))
    return [c for *_, c in sorted(scored)[:top_n]]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_without_spreading_the_grouped_ranking_equals_scoring_every_pair(seed: int) -> None:
    rnd = random.Random(seed)
    inds, regs = ["H", "R", "F", "M"], ["E", "A", "N"]
    rows = [
        (f"c{i:03d}", f"a{rnd.randrange(40):02d}", float(rnd.randrange(101)), "", "")
        for i in range(300)
    ]
    acct_terms = {f"a{a:02d}": (rnd.choice(inds), rnd.choice(regs)) for a in range(40)}
    rows = [(c, a, s, *acct_terms[a]) for c, a, s, _, _ in rows]
    cands = _candidates(rows)
    deals = [
        (f"o{i}", f"a{rnd.randrange(40):02d}", ind, reg)
        for i, (ind, reg) in enumerate(itertools.product(inds, regs))
    ]
    ranker = _ranker(cands, top_n=3, spreading=0.0)
    found = list(ranker.rank(_deals(deals)))
    got: dict[str, list[str]] = {}
    for s in found:
        got.setdefault(s.opportunity_id, []).append(s.contact_id)
    for deal in deals:
        assert got[deal[0]] == _brute(cands, deal, 3), deal


Cand = tuple[str, str | None, float | None, str | None, str | None, str | None]
Deal = tuple[str, str | None, str | None, str | None, str | None]
TERMS3 = {"industry": 3.0, "region": 2.0, "segment": 1.0}


def _exhaustive(
    cands: list[Cand], deals: list[Deal], top_n: int, spreading: float
) -> list[tuple[str, int, str, str | None, float, float, dict[str, str]]]:
    """The plain twin with spreading: per deal in order, every candidate scored at the loads
    left by the deals before, the deal's own account left out, the best ``top_n`` taken."""
    total = sum(TERMS3.values())
    loads: dict[str, int] = {}
    out = []
    for opp, own, *deal in deals:
        scored = []
        for contact, account, score, *theirs in cands:
            if account == own:
                continue
            sim = 0.0
            for term, mine, other in zip(TERMS3, deal, theirs, strict=True):
                if mine is not None and mine == other:
                    sim += TERMS3[term] / total
            adj = (score or 0.0) / (1.0 + spreading * loads.get(contact, 0))
            scored.append((-(sim * adj), -sim, -adj, contact, account, theirs))
        for rank, (value, sim, _, contact, account, theirs) in enumerate(
            sorted(scored)[:top_n], start=1
        ):
            loads[contact] = loads.get(contact, 0) + 1
            terms = {
                t: str(m)
                for t, m, o in zip(TERMS3, deal, theirs, strict=True)
                if m is not None and m == o
            }
            out.append((opp, rank, contact, account, round(-value, 4), round(-sim, 4), terms))
    return out


def _random_case(seed: int) -> tuple[list[Cand], list[Deal], int, float]:
    """Few term values and scores (many ties), groups of one or two, deals on candidates'
    own accounts and on accounts without candidates, NULL terms and scores."""
    rnd = random.Random(seed)
    inds, regs, segs = ["H", "R", "F", None], ["E", "A", None], ["S", "M"]
    n_accounts = rnd.randrange(3, 30)
    terms = {
        f"a{a:02d}": (rnd.choice(inds), rnd.choice(regs), rnd.choice(segs))
        for a in range(n_accounts)
    }
    accounts: list[str | None] = [*terms, None]
    cands: list[Cand] = []
    for i in range(rnd.randrange(1, 120)):
        account = rnd.choice(accounts)
        score = None if rnd.random() < 0.05 else float(rnd.choice([0, 25, 50, 60, 75, 100]))
        values = terms[account] if account is not None else (None, None, None)
        cands.append((f"c{rnd.randrange(10**6):06d}x{i}", account, score, *values))
    deals: list[Deal] = []
    for i in range(rnd.randrange(1, 150)):
        own = rnd.choice([*accounts, "elsewhere"])
        values = terms.get(own or "", (rnd.choice(inds), rnd.choice(regs), rnd.choice(segs)))
        deals.append((f"o{i:04d}", own, *values))
    return cands, deals, rnd.choice([1, 2, 3, 5]), rnd.choice([0.0, 0.5, 1.0, 3.0])


@pytest.mark.parametrize("seed", range(40))
def test_the_lazy_ranking_equals_scoring_every_pair_with_load_spreading(seed: int) -> None:
    cands, deals, top_n, spreading = _random_case(seed)
    frame = pl.DataFrame(
        cands,
        schema={
            "contact_id": pl.String,
            "account_id": pl.String,
            "score": pl.Float64,
            "k_industry": pl.String,
            "k_region": pl.String,
            "k_segment": pl.String,
        },
        orient="row",
    )
    schema = ["opportunity_id", "account_id", "k_industry", "k_region", "k_segment"]
    # a row at a time and two at most: every page boundary and group end is crossed
    ranker = Ranker(
        FrameSource(frame, list(TERMS3)), TERMS3, top_n, spreading, first_page=1, max_page=2
    )
    got = []
    rnd = random.Random(seed)
    start = 0
    while start < len(deals):  # batches of random sizes: the loads carry across them
        size = rnd.randrange(1, 40)
        batch = pl.DataFrame(deals[start : start + size], schema=schema, orient="row")
        got += [
            (s.opportunity_id, s.rank, s.contact_id, s.account_id, s.score, s.similarity, s.terms)
            for s in ranker.rank(batch)
        ]
        start += size
    assert got == _exhaustive(cands, deals, top_n, spreading)
    # only as deep as the answers reach: never more rows than the deals could use or skip
    assert ranker.read <= len(cands)


def test_a_group_is_read_only_as_deep_as_the_answers_reach() -> None:
    rows = [(f"c{i:04d}", f"a{i:04d}", float(i % 100), "H", "E") for i in range(2000)]
    source = FrameSource(_candidates(rows), list(WEIGHTS))
    ranker = Ranker(source, WEIGHTS, top_n=3, spreading=0.5, first_page=8)
    found = list(ranker.rank(_deals([(f"o{i}", "x", "H", "E") for i in range(10)])))
    assert len(found) == 30
    # 30 proposals over the 20 best (scores 99 x 20, 98 x 20, ...): pages of 8, 8, 16, 32
    assert ranker.read <= 64
    assert max(ranker.loads.values()) <= 2


def test_size_bands_cut_at_the_bounds() -> None:
    frame = pl.DataFrame({"n": [None, 5, 200, 999, 1000, 6000]})
    out = frame.select(band_of(pl.col("n"), [200, 1000])).to_series().to_list()
    assert out == [None, "<200", "200-1000", "200-1000", ">=1000", ">=1000"]
