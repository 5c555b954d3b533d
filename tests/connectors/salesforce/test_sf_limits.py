"""Sforce-Limit-Info parsing and the API budget stop."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses

from canonical.errors import BudgetExhaustedError
from connectors.base import StreamSpec
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce.limits import ApiBudget, parse_limit_info
from tests.connectors.salesforce.sf_fakes import API, describe_response, no_sleep, token_response


@pytest.mark.parametrize(
    ("header", "used", "limit", "bursts"),
    [
        ("api-usage=10018/100000", 10018, 100000, None),
        ("api-usage=10018/100000; api-bursts=1/750", 10018, 100000, (1, 750)),
        ("api-usage=10018/100000;api-bursts=12/750", 10018, 100000, (12, 750)),
        ("api-bursts=3/750; api-usage=5/100", 5, 100, (3, 750)),
        (
            "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)",
            25,
            5000,
            None,
        ),
        ("per-app-api-usage=17/250(appName=x); api-usage=25/5000", 25, 5000, None),
        ("api-usage = 120/100", 120, 100, None),  # usage can exceed the limit
    ],
)
def test_limit_info_is_parsed_without_anchoring_the_header(
    header: str, used: int, limit: int, bursts: tuple[int, int] | None
) -> None:
    info = parse_limit_info(header)
    assert info is not None
    assert (info.used, info.limit) == (used, limit)
    assert (info.bursts_used, info.bursts_limit) == (bursts or (None, None))


def test_per_app_usage_is_not_mistaken_for_org_usage() -> None:
    info = parse_limit_info("per-app-api-usage=17/250(appName=x)")
    assert info is not None
    assert info.used is None
    assert (info.per_app_used, info.per_app_limit, info.app_name) == (17, 250, "x")


@pytest.mark.parametrize("header", [None, "", "garbage", "api-usage=abc/100"])
def test_unreadable_limit_info_is_ignored(header: str | None) -> None:
    assert parse_limit_info(header) is None


def test_budget_share_stops_before_the_next_call() -> None:
    budget = ApiBudget(budget_share=0.8)
    budget.observe("api-usage=79/100")
    budget.check()
    budget.observe("api-usage=80/100; api-bursts=1/750")
    with pytest.raises(BudgetExhaustedError, match="budget_share 80%"):
        budget.check()


def test_run_budget_share_counts_this_runs_own_calls() -> None:
    budget = ApiBudget(budget_share=1.0, run_budget_share=0.03)
    for _ in range(2):
        budget.observe("api-usage=10/100")
    budget.check()
    budget.observe("api-usage=10/100")
    with pytest.raises(BudgetExhaustedError, match="run_budget_share"):
        budget.check()


def test_read_stops_cleanly_when_usage_passes_budget_share(rsps: responses.RequestsMock) -> None:
    cfg = SalesforceConfig(
        login_url="https://login.example.test",
        client_id="c",
        client_secret="s",
        batch_size=2,
        budget_share=0.8,
    )
    conn = SalesforceConnector(cfg, sleep=no_sleep)
    token_response(rsps)
    describe_response(rsps, headers={"Sforce-Limit-Info": "api-usage=70/100"})
    rsps.get(
        f"{API}/queryAll/",
        json={"done": True, "totalSize": 4, "records": []},
        headers={"Sforce-Limit-Info": "api-usage=71/100"},
    )
    rows = [
        {
            "attributes": {},
            "Id": f"003{i}",
            "SystemModstamp": "2026-01-01T00:00:00.000+0000",
            "IsDeleted": False,
        }
        for i in range(4)
    ]
    rsps.get(
        f"{API}/queryAll/",
        json={
            "done": False,
            "totalSize": 4,
            "records": rows[:2],
            "nextRecordsUrl": "/services/data/v62.0/query/01g-2",
        },
        headers={"Sforce-Limit-Info": "api-usage=80/100; api-bursts=2/750"},
    )
    stream = conn.stream(StreamSpec(name="contacts", object_name="Contact", fields=("Email",)))
    batches = stream.read(None, datetime(2026, 2, 1, tzinfo=UTC))
    first = next(batches)
    assert [r["Id"] for r in first.records] == ["0030", "0031"]
    with pytest.raises(BudgetExhaustedError):
        next(batches)
    usage = conn.usage()
    assert (usage.used, usage.limit, usage.calls) == (80, 100, 4)
    assert usage.extra["api_bursts"] == {"used": 2, "limit": 750}
