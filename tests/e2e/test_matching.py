"""Reference matching end to end: the sandbox over HTTPS, the real connector, the store.

Each cycle syncs the org, evaluates it, writes the verdicts back and then proposes advocates on
every open deal, written to Opportunity.Suggested_References__c; the sandbox's own records say
what Salesforce holds.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sync_service.context import AppContext
from sync_service.ops.runs import Run
from sync_service.pipeline import run_cycle
from sync_service.store.models import accounts, contacts, evaluations, match_suggestions
from tests.e2e.test_writeback import context, service_env

REPO = Path(__file__).resolve().parents[2]
FIELD = "Suggested_References__c"
MIN_AMOUNT = 10_000  # config/matching.yaml


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(accounts=80, seed=5) as sandbox:
        yield sandbox


@pytest.fixture
def ctx(
    sb: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppContext]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.ca_bundle)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    env = service_env(sb, db_url, tmp_path, gainsight=True)  # NPS comes from Gainsight
    Path(env["SYNC_CONFIG"]).write_text(
        f"matching_file: {REPO / 'config' / 'matching.yaml'}\n", encoding="utf-8"
    )
    context_ = context(env)
    yield context_
    context_.engine.dispose()


def _cycle(ctx: AppContext) -> Run:
    runs = run_cycle(ctx)
    assert [r.job for r in runs][-3:] == ["evaluate", "writeback", "match"]
    assert {r.status for r in runs} == {"success"}, [(r.job, r.error) for r in runs]
    return runs[-1]


def _open_deals(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {
        o["Id"]: o
        for o in sb.records("Opportunity")
        if not o["IsClosed"] and (o["Amount"] or 0) >= MIN_AMOUNT
    }


def _stored(ctx: AppContext) -> list[dict[str, Any]]:
    m, e, c = match_suggestions, evaluations, contacts
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                m.c.opportunity_id,
                m.c.contact_id,
                m.c.account_id,
                e.c.status,
                e.c.available_for,
                c.c.account_id.label("contact_account"),
            )
            .join(e, sa.and_(e.c.entity_type == "contact", e.c.entity_id == m.c.contact_id))
            .join(c, sa.and_(c.c.source == "salesforce", c.c.id == m.c.contact_id))
        ).mappings()
        return [dict(r) for r in rows]


def _share_same_industry_and_region(
    ctx: AppContext, sb: Sandbox, picks: dict[str, list[str]]
) -> float:
    with ctx.engine.connect() as conn:
        terms = {
            str(i): (ind, reg)
            for i, ind, reg in conn.execute(
                sa.select(accounts.c.id, accounts.c.industry, accounts.c.region)
            )
        }
    deals = {o["Id"]: o["AccountId"] for o in sb.records("Opportunity")}
    pairs = [(terms[deals[o]], terms[a]) for o, accts in picks.items() for a in accts]
    return sum(1 for d, a in pairs if d == a and d[0] is not None) / len(pairs)


def test_every_open_deal_gets_eligible_consented_advocates_kept_current(
    sb: Sandbox, ctx: AppContext
) -> None:
    first = _cycle(ctx)
    assert first.counts["deals"] == len(_open_deals(sb)) > 20
    assert first.counts["deals_without"] == 0, first.counts
    assert first.counts["written"] == first.counts["enqueued"] == len(_open_deals(sb))

    # Every open deal above the threshold holds its suggestions in Salesforce ...
    for opp_id, opp in _open_deals(sb).items():
        lines = (opp[FIELD] or "").splitlines()
        assert len(lines) == 3, opp_id
        assert lines[0].startswith("1. ")
        assert "; available now" in lines[0] or "; available from " in lines[0]
    # ... and deals that are closed or small hold none.
    for opp in sb.records("Opportunity"):
        if opp["Id"] not in _open_deals(sb):
            assert not opp[FIELD]

    # Every suggested contact is Eligible, consented to reference calls, from another account.
    stored = _stored(ctx)
    assert len(stored) == 3 * len(_open_deals(sb))
    deal_account = {o["Id"]: o["AccountId"] for o in sb.records("Opportunity")}
    for row in stored:
        assert row["status"] == "Eligible"
        assert "Reference Call" in row["available_for"].split(";")
        assert row["contact_account"] == row["account_id"] != deal_account[row["opportunity_id"]]

    # Better than chance: the share of suggestions sharing the deal's industry and region,
    # against a random eligible, consented pick from another account in the same run.
    picks: dict[str, list[str]] = {}
    for row in stored:
        picks.setdefault(row["opportunity_id"], []).append(row["account_id"])
    with ctx.engine.connect() as conn:
        pool = [
            (str(cid), str(aid))
            for cid, aid, avail in conn.execute(
                sa.select(
                    evaluations.c.entity_id, contacts.c.account_id, evaluations.c.available_for
                )
                .join(contacts, contacts.c.id == evaluations.c.entity_id)
                .where(evaluations.c.status == "Eligible")
            )
            if "Reference Call" in (avail or "").split(";")
        ]
    rnd = random.Random(0)
    chance: dict[str, list[str]] = {}
    for opp_id in picks:
        others = [a for _, a in pool if a != deal_account[opp_id]]
        chance[opp_id] = [rnd.choice(others) for _ in range(3)]
    matched = _share_same_industry_and_region(ctx, sb, picks)
    random_pick = _share_same_industry_and_region(ctx, sb, chance)
    print(
        f"\nsuggestions sharing the deal's industry and region: {matched:.0%} "
        f"(a random eligible pick: {random_pick:.0%}; {len(stored)} suggestions)"
    )
    assert matched > 2 * random_pick

    # No change, no write.
    second = _cycle(ctx)
    assert (second.counts["enqueued"], second.counts["written"]) == (0, 0)

    # An advocate turned Fatigued (a reference call logged today) leaves every deal in one
    # cycle; a deal closed in Salesforce is cleared.
    tired = stored[0]["contact_id"]
    sb.insert(
        "Reference_Request__c",
        {
            "Contact__c": tired,
            "Account__c": stored[0]["account_id"],
            "Type__c": "Reference Call",
            "Status__c": "Completed",
            "Requested_Date__c": datetime.now(UTC).date().isoformat(),
            "Team__c": "Sales",
        },
    )
    closing = next(o for o in _open_deals(sb) if o != stored[0]["opportunity_id"])
    sb.update("Opportunity", closing, {"StageName": "Closed Won", "IsClosed": True})
    third = _cycle(ctx)
    assert third.counts["cleared"] == 1
    with ctx.engine.connect() as conn:
        status = conn.execute(
            sa.select(evaluations.c.status).where(evaluations.c.entity_id == tired)
        ).scalar_one()
    assert status == "Fatigued"
    assert tired not in {r["contact_id"] for r in _stored(ctx)}
    assert not sb.record("Opportunity", closing)[FIELD]  # type: ignore[index]
    assert all(len((o[FIELD] or "").splitlines()) == 3 for o in _open_deals(sb).values())
