from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from connectors.gainsight import GainsightConfig, GainsightConnector
from sync_service.ops.api_usage import calls_today
from sync_service.store.models import runs

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def add_run(engine: Engine, started: datetime, api_calls: object) -> None:
    with engine.begin() as conn:
        conn.execute(
            runs.insert().values(
                job="gainsight", status="success", started_at=started, api_calls=api_calls
            )
        )


def test_calls_today_sums_todays_runs_only(engine: Engine) -> None:
    add_run(engine, datetime(2026, 11, 22, 23, 59, tzinfo=UTC), {"gainsight": {"calls": 500}})
    add_run(engine, datetime(2026, 11, 23, 0, 5, tzinfo=UTC), {"gainsight": {"calls": 30}})
    add_run(
        engine,
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        {"gainsight": {"calls": 12}, "salesforce": {"calls": 7}},
    )
    add_run(engine, datetime(2026, 11, 23, 10, 0, tzinfo=UTC), {"salesforce": {"calls": 9}})
    add_run(engine, datetime(2026, 11, 23, 11, 0, tzinfo=UTC), None)
    assert calls_today(engine, "gainsight", NOW) == 42
    assert calls_today(engine, "salesforce", NOW) == 16


def test_seeded_calls_count_against_the_daily_share() -> None:
    cfg = GainsightConfig(
        base_url="https://acme.gainsightcloud.com",
        access_key="k",
        calls_per_day=100,
        budget_share=0.5,
        calls_today=45,
    )
    conn = GainsightConnector(cfg)
    assert conn.usage().used == 45
    assert conn.usage().extra["remaining_today"] == 5
    conn.close()
