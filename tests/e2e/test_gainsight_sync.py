"""End to end: the Gainsight connector's real requests client against the HTTPS sandbox.

The pipeline's ``sync_job`` pulls Salesforce then Gainsight into a real store (SQLite or
PostgreSQL per ``TEST_DATABASE``) and links identities; the direct tests drive the streams and
the writer over the wire: paging, incremental reads, 429/5xx recovery, auth failure, writes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import AuthError, BudgetExhaustedError
from connectors.base import RecordChange, StreamSpec
from connectors.gainsight import GainsightConfig, GainsightConnector, build_session
from sandbox import Sandbox
from sync_service.context import AppContext
from sync_service.pipeline import sync_job
from sync_service.store.models import accounts, contacts, nps_responses, quarantine

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
COMPANY = StreamSpec(
    name="accounts",
    object_name="Company",
    fields=("Name", "SfdcAccountId", "CurrentScore"),
    primary_key="Gsid",
    replication_key="ModifiedDate",
)


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    with Sandbox(accounts=40, seed=7, now=NOW) as sb:
        yield sb


@pytest.fixture
def sb(module_sandbox: Sandbox) -> Iterator[Sandbox]:
    module_sandbox.faults.reset()
    yield module_sandbox
    module_sandbox.faults.reset()


def connector(sb: Sandbox, *, key: str | None = None, **kw: Any) -> GainsightConnector:
    writes = kw.pop("writes_enabled", False)
    cfg = GainsightConfig(
        base_url=sb.gainsight_url,
        access_key=key or sb.credentials["gainsight_access_key"],
        ca_bundle=sb.ca_bundle,
        timeout_seconds=10,
        max_retry_wait=2,
        **kw,
    )
    return GainsightConnector(cfg, build_session(cfg), writes_enabled=writes)


def until() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r["Gsid"]) for r in rows]


def test_pipeline_syncs_gainsight_and_links_identities(
    sb: Sandbox, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # REQUESTS_CA_BUNDLE reaches the connectors only through the settings (ctx.env), not the
    # process environment: each connector must pin the CA bundle itself.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    ctx = AppContext(env={**sb.env(), "DATABASE_URL": db_url})
    sf_run = sync_job(ctx, "salesforce")
    assert sf_run.status == "success", sf_run.error
    gs_run = sync_job(ctx, "gainsight")
    assert gs_run.status == "success", gs_run.error
    engine: Engine = ctx.engine
    try:
        with engine.connect() as conn:

            def count(table: sa.Table, source: str) -> int:
                return int(
                    conn.execute(
                        sa.select(sa.func.count())
                        .select_from(table)
                        .where(table.c.source == source)
                    ).scalar_one()
                )

            assert count(accounts, "gainsight") == sb.count("Company")
            assert count(contacts, "gainsight") == sb.count("Person")
            assert count(nps_responses, "gainsight") == sb.count("SurveyUserAnswer")
            assert (
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(quarantine)
                    .where(quarantine.c.connector == "gainsight")
                ).scalar_one()
                == 0
            )
            # Every Gainsight person whose e-mail matches exactly one Salesforce contact
            # (case and whitespace aside) ends up linked to it.
            sf_by_email: dict[str, list[str]] = {}
            for c in sb.records("Contact"):
                if c.get("Email"):
                    sf_by_email.setdefault(c["Email"].strip().lower(), []).append(c["Id"])
            linked = dict(
                conn.execute(
                    sa.select(contacts.c.id, contacts.c.sf_contact_id).where(
                        contacts.c.source == "gainsight"
                    )
                ).all()
            )
        expected_ambiguous = 0
        for p in sb.records("Person"):
            matches = sf_by_email.get((p.get("Email") or "").strip().lower(), [])
            if p.get("SfdcContactId"):
                assert linked[p["Gsid"]] == p["SfdcContactId"]
            elif len(matches) == 1:
                assert linked[p["Gsid"]] == matches[0]
            else:
                assert linked[p["Gsid"]] is None
                expected_ambiguous += len(matches) > 1
        counts = gs_run.counts
        total = sum(counts[f"{k}.contacts"] for k in ("matched", "unmatched", "ambiguous"))
        assert total == sb.count("Person")
        assert counts["ambiguous.contacts"] == expected_ambiguous
        # The seed has Gainsight-only companies and people: kept and counted, not dropped.
        assert counts["unmatched.accounts"] >= 1
        assert counts["unmatched.contacts"] >= 1
        assert counts["records.accounts"] == sb.count("Company")
        assert gs_run.api_calls["gainsight"]["calls"] >= 3

        # An incremental run reads only what changed since (plus the overlap window).
        company = sb.records("Company")[0]
        sb.update("Company", company["Gsid"], {"Name": "Renamed Co"})
        again = sync_job(ctx, "gainsight")
        assert again.status == "success", again.error
        with engine.connect() as conn:
            name = conn.execute(
                sa.select(accounts.c.name).where(
                    accounts.c.source == "gainsight", accounts.c.id == company["Gsid"]
                )
            ).scalar_one()
        assert name == "Renamed Co"
        assert again.counts["records.accounts"] < sb.count("Company")
    finally:
        engine.dispose()


def test_small_pages_read_every_record_once_in_order(sb: Sandbox) -> None:
    with connector(sb, page_size=7) as gs:
        batches = list(gs.stream(COMPANY).read(None, until()))
        rows = [r for b in batches for r in b.records]
        assert sorted(ids_of(rows)) == sorted(r["Gsid"] for r in sb.records("Company"))
        assert len(set(ids_of(rows))) == len(rows)
        assert all(len(b.records) <= 7 for b in batches)
        cursors = [b.cursor for b in batches]
        assert cursors == sorted(cursors)  # type: ignore[type-var]
        assert gs.usage().calls == len(rows) // 7 + 1  # the last, short page ends the read
        ids = [i for batch in gs.stream(COMPANY).ids() for i in batch]
        assert sorted(ids) == sorted(ids_of(rows))


def test_incremental_read_returns_changes_after_the_cursor(sb: Sandbox) -> None:
    with connector(sb, page_size=50) as gs:
        stream = gs.stream(COMPANY)
        first = list(stream.read(None, until()))
        last = first[-1].cursor
        people = sb.records("Company")[:2]
        for p in people:
            sb.update("Company", p["Gsid"], {"CurrentScore": 88})
        # The sandbox's clock stays strictly increasing by running a millisecond ahead of the
        # wall clock when writes come faster: read up to a moment surely after both.
        later = until() + dt.timedelta(seconds=1)
        changed = [r for b in stream.read(last, later) for r in b.records]
        assert sorted(ids_of(changed)) == sorted(p["Gsid"] for p in people)
        assert all(r["CurrentScore"] == 88 for r in changed)


def test_429_and_503_are_retried_honouring_retry_after(sb: Sandbox) -> None:
    sb.faults.retry_after = 1
    sb.faults.fail_next(429, count=1, system="gainsight")
    sb.faults.fail_next(503, count=1, system="gainsight")
    before = sb.api_calls["gainsight"]
    with connector(sb, page_size=5000) as gs:
        rows = [r for b in gs.stream(COMPANY).read(None, until()) for r in b.records]
        assert len(rows) == sb.count("Company")
        assert gs.usage().extra["statuses"] == {"200": 1, "429": 1, "503": 1}
    # The tenant counts every authorised call, refused ones too: the connector's own count agrees.
    assert sb.api_calls["gainsight"] - before == 3


def test_the_tenants_daily_limit_ends_the_read_as_partial_without_retrying(sb: Sandbox) -> None:
    # Past the daily limit the sandbox answers 429 with Retry-After = the seconds to midnight
    # UTC: far beyond any retry wait, so the read stops at once as BudgetExhaustedError.
    if 86_400 - time.time() % 86_400 < 120:
        pytest.skip("too close to midnight UTC: the daily window is about to reopen")
    sb.faults.gainsight_per_day = 1
    with connector(sb, page_size=7) as gs:
        with pytest.raises(BudgetExhaustedError, match="partial"):
            list(gs.stream(COMPANY).read(None, until()))
        assert gs.usage().extra["statuses"] == {"200": 1, "429": 1}


def test_a_wrong_access_key_fails_at_once_with_one_call(sb: Sandbox) -> None:
    sent: list[str] = []
    with connector(sb, key="not-the-key") as gs:

        def count(resp: requests.Response, *args: object, **kwargs: object) -> None:
            sent.append(resp.request.method or "")

        gs.session.hooks["response"].append(count)
        with pytest.raises(AuthError, match="GAINSIGHT_ACCESS_KEY"):
            list(gs.stream(COMPANY).read(None, until()))
    assert sent == ["POST"]


def test_writes_update_companies_and_report_each_record(sb: Sandbox) -> None:
    gsids = [c["Gsid"] for c in sb.records("Company")[:3]]
    changes = [RecordChange(g, {"Advocate_Status__gc": "Eligible"}) for g in gsids]
    changes.append(RecordChange("1C-NOT-A-COMPANY", {"Advocate_Status__gc": "Eligible"}))
    with connector(sb) as gs:
        assert {r.code for r in gs.write("Company", changes)} == {"WRITES_DISABLED"}
    before = sb.api_calls["gainsight.update"]
    with connector(sb, writes_enabled=True) as gs:
        results = gs.write("Company", changes)
    assert [r.success for r in results] == [True, True, True, False]
    assert results[3].code == "GS_RECORD_NOT_FOUND"
    assert sb.api_calls["gainsight.update"] - before == 1
    for g in gsids:
        record = sb.record("Company", g)
        assert record is not None
        assert record["Advocate_Status__gc"] == "Eligible"
