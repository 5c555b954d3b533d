"""The ranking: similarity x score, never the deal's own account, load spread across deals."""

from __future__ import annotations

import itertools

import polars as pl
import pytest

from sync_service.match.rank import Ranker, band_of

WEIGHTS = {"industry": 3.0, "region": 2.0}


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
    ranker = Ranker(CANDIDATES, WEIGHTS, top_n=3, spreading=0.0)
    found = list(ranker.rank(_deals([("o1", "deal", "Health", "EMEA")])))
    assert [(s.contact_id, s.rank) for s in found] == [("c1", 1), ("c3", 2), ("c4", 3)]
    # c1: 1.0 x 90; c3: 1.0 x 60 and c4: 0.6 x 100 tie, the more similar first; c2: 0.4 x 100
    assert [s.score for s in found] == [90.0, 60.0, 60.0]
    assert found[0].terms == {"industry": "Health", "region": "EMEA"}
    assert found[2].terms == {"industry": "Health"}
    assert all(s.account_id != "deal" for s in found)


def test_load_spreading_moves_an_advocate_down_after_each_proposal() -> None:
    deals = _deals([(f"o{i}", "x", "Health", "EMEA") for i in range(4)])
    same = list(Ranker(CANDIDATES, WEIGHTS, top_n=1, spreading=0.0).rank(deals))
    assert {s.contact_id for s in same} == {"c5"}  # no spreading: one person on every deal
    spread = list(Ranker(CANDIDATES, WEIGHTS, top_n=1, spreading=1.0).rank(deals))
    # c5 100 -> 50 after one proposal; c1 90 -> 45; then c3 (60, same terms) before c4 (60)
    assert [s.contact_id for s in spread] == ["c5", "c1", "c3", "c4"]


def test_a_null_term_never_matches_and_a_deal_without_candidates_gets_none() -> None:
    ranker = Ranker(CANDIDATES, WEIGHTS, top_n=2, spreading=0.0)
    found = list(ranker.rank(_deals([("o1", "zz", None, "EMEA")])))
    assert [s.contact_id for s in found] == ["c2", "c5"]  # region only: 0.4 x 100 each
    assert found[0].terms == {"region": "EMEA"}
    empty = Ranker(CANDIDATES.clear(), WEIGHTS, top_n=2, spreading=0.0)
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
    import random

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
    ranker = Ranker(cands, WEIGHTS, top_n=3, spreading=0.0)
    found = list(ranker.rank(_deals(deals)))
    got: dict[str, list[str]] = {}
    for s in found:
        got.setdefault(s.opportunity_id, []).append(s.contact_id)
    for deal in deals:
        assert got[deal[0]] == _brute(cands, deal, 3), deal


def test_size_bands_cut_at_the_bounds() -> None:
    frame = pl.DataFrame({"n": [None, 5, 200, 999, 1000, 6000]})
    out = frame.select(band_of(pl.col("n"), [200, 1000])).to_series().to_list()
    assert out == [None, "<200", "200-1000", "200-1000", ">=1000", ">=1000"]
