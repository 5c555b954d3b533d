"""``sync-service status``: per job, then watermarks, quarantine, edits, writebacks, evaluations."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from sync_service.cli import main
from sync_service.commands import status
from sync_service.context import AppContext
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import evaluations, quarantine, runs, sync_state, writeback_outbox
from tests.configs import SHIPPED_PATHS


def _run(engine: Engine, job: str, status: str, start: datetime, **kw: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            runs.insert().values(
                job=job,
                status=status,
                started_at=start,
                finished_at=start + timedelta(seconds=42),
                host="replica-1",
                counts=kw.get("counts", {}),
                api_calls=kw.get("api_calls", {}),
                error=kw.get("error"),
                config_errors=kw.get("config_errors"),
            )
        )


def _status(config: Path, *, json_out: bool) -> int:
    # Through the command module with a context we dispose (a pooled PostgreSQL connection
    # left open would warn when the test database is dropped).
    ctx = AppContext(config_path=str(config), json_output=json_out)
    try:
        return status.run(argparse.Namespace(json=json_out), ctx)
    finally:
        if "engine" in ctx.__dict__:
            ctx.engine.dispose()


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(
        f"database_url: {db_url}\ngainsight: {{enabled: false}}\n{SHIPPED_PATHS}"
        "jobs:\n  salesforce: {interval_minutes: 30}\n  reconcile: {cron: '0 3 * * *'}\n",
        encoding="utf-8",
    )
    return cfg


def _populate(engine: Engine) -> datetime:
    now = datetime.now(UTC)
    _run(
        engine,
        "salesforce",
        "success",
        now - timedelta(minutes=10),
        counts={"records.Contact": 120, "quarantined.Contact": 2},
        api_calls={"salesforce": {"calls": 9, "used": 9_000, "limit": 100_000}},
    )
    _run(
        engine,
        "reconcile",
        "failed",
        now - timedelta(days=3),
        config_errors=["mappings/salesforce.yaml:4:3: unknown field 'Foo__c'"],
        error="mapping rejected",
    )
    _run(engine, "writeback", "held", now - timedelta(minutes=9), error="45% of statuses change")
    _run(engine, "evaluate", "success", now - timedelta(hours=5), config_errors=["old, fixed"])
    _run(engine, "evaluate", "success", now - timedelta(hours=4))
    with engine.begin() as conn:
        conn.execute(
            sync_state.insert().values(
                connector="salesforce",
                stream="Contact",
                cursor_updated_at=now - timedelta(minutes=11),
                cursor_id="003X",
                updated_at=now,
            )
        )
        conn.execute(
            quarantine.insert(),
            [
                {
                    "connector": "salesforce",
                    "stream": "Contact",
                    "reason": "bad",
                    "created_at": now,
                    "resolved": False,
                }
            ]
            * 2,
        )
        conn.execute(
            writeback_outbox.insert(),
            [
                {
                    "target": "salesforce",
                    "object_name": "Contact",
                    "record_id": f"003{i}",
                    "fields": {},
                    "state": state,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, state in enumerate(["pending", "pending", "pending", "failed"])
            ],
        )
        conn.execute(
            evaluations.insert(),
            [
                {
                    "entity_type": "contact",
                    "entity_id": f"003{i}",
                    "status": status,
                    "eligible": status == "Eligible",
                    "evaluated_at": now,
                }
                for i, status in enumerate(["Eligible", "Eligible", "Fatigued"])
            ],
        )
    return now


def test_status_json_reports_every_section(
    config: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    now = _populate(engine)
    assert _status(config, json_out=True) == 0
    report = json.loads(capsys.readouterr().out)
    sf = report["jobs"]["salesforce"]
    assert sf["schedule"] == "every 30 min"
    assert sf["last_run"]["status"] == "success"
    assert sf["last_run"]["counts"]["records.Contact"] == 120
    assert sf["last_run"]["duration_seconds"] == 42
    due = datetime.fromisoformat(sf["next_run"])
    assert abs((due - (now + timedelta(minutes=20))).total_seconds()) < 5
    rec = report["jobs"]["reconcile"]
    assert rec["last_run"]["status"] == "failed"
    assert rec["next_run"] == "now"  # nightly run missed: it would run at once on start
    assert report["api_budget"]["salesforce"]["used"] == 9_000
    assert report["watermarks"][0]["cursor_id"] == "003X"
    assert report["quarantine"]["total"] == 2
    assert report["rejected_config_edits"] == [
        {
            "job": "reconcile",
            "run_id": report["jobs"]["reconcile"]["last_run"]["id"],
            "at": report["jobs"]["reconcile"]["last_run"]["started_at"],
            "errors": ["mappings/salesforce.yaml:4:3: unknown field 'Foo__c'"],
        }
    ]  # evaluate's old rejected edit was fixed by a later run: not shown
    assert [h["job"] for h in report["held_writebacks"]] == ["writeback"]
    assert report["writeback_outbox"] == {"pending": 3, "failed": 1, "done": 0}
    assert report["evaluations"] == {"contact:Eligible": 2, "contact:Fatigued": 1}
    assert report["jobs"]["writeback"]["schedule"] == "not scheduled"


def test_status_text_is_readable(
    config: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    _populate(engine)
    assert _status(config, json_out=False) == 0
    out = capsys.readouterr().out
    assert "salesforce  every 30 min" in out
    assert "API salesforce: 9 calls, 9000/100000 of the budget used" in out
    assert "reconcile run" in out
    assert "unknown field 'Foo__c'" in out
    assert "Quarantine: 2 unresolved (salesforce/Contact 2)" in out
    assert "Writeback outbox: 3 pending, 1 failed" in out
    assert "Held writeback: run" in out
    assert "Evaluations: contact:Eligible 2, contact:Fatigued 1" in out


def test_status_command_on_a_missing_store_is_an_error_and_creates_nothing(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "empty.yaml"
    cfg.write_text(f"database_url: sqlite:///elsewhere/store.db\n{SHIPPED_PATHS}")
    assert main(["--config", str(cfg), "status"]) == 2
    err = capsys.readouterr().err
    assert f"no store at '{tmp_path / 'elsewhere' / 'store.db'}'" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "elsewhere").exists()


def test_status_command_on_an_empty_store(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "empty.yaml"
    cfg.write_text(f"database_url: {sqlite_url}\n{SHIPPED_PATHS}", encoding="utf-8")
    upgrade(make_engine(sqlite_url))
    assert main(["--config", str(cfg), "status"]) == 0
    out = capsys.readouterr().out
    assert "never ran" in out
    assert "Rejected config edits: none" in out
