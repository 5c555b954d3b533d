"""Trimming the operational tables: old finished work goes, the latest run and the audit stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.ops.housekeeping import trim_history
from sync_service.store.models import quarantine, runs, writeback_log, writeback_outbox

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=3)


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            runs.insert(),
            [
                {
                    "id": 1,
                    "job": "salesforce",
                    "status": "success",
                    "started_at": OLD,
                    "finished_at": OLD,
                },
                {
                    "id": 2,
                    "job": "salesforce",
                    "status": "success",
                    "started_at": RECENT,
                    "finished_at": RECENT,
                },
                # the only (so latest) reconcile run: kept however old
                {
                    "id": 3,
                    "job": "reconcile",
                    "status": "failed",
                    "started_at": OLD,
                    "finished_at": OLD,
                },
                # still running (or abandoned): never trimmed here
                {
                    "id": 4,
                    "job": "gainsight",
                    "status": "running",
                    "started_at": OLD,
                    "finished_at": None,
                },
                {
                    "id": 5,
                    "job": "gainsight",
                    "status": "success",
                    "started_at": RECENT,
                    "finished_at": RECENT,
                },
            ],
        )
        outbox = {
            "target": "salesforce",
            "object_name": "Contact",
            "fields": {"A__c": 1},
            "created_at": OLD,
        }
        conn.execute(
            writeback_outbox.insert(),
            [
                {**outbox, "record_id": "003A", "state": "done", "updated_at": OLD},
                {**outbox, "record_id": "003B", "state": "done", "updated_at": RECENT},
                {**outbox, "record_id": "003C", "state": "failed", "updated_at": OLD},
            ],
        )
        q = {"connector": "salesforce", "stream": "Contact", "reason": "bad date"}
        conn.execute(
            quarantine.insert(),
            [
                {**q, "record_id": "003A", "created_at": OLD, "resolved": True},
                {**q, "record_id": "003B", "created_at": OLD, "resolved": False},
                {**q, "record_id": "003C", "created_at": RECENT, "resolved": True},
            ],
        )
        conn.execute(
            writeback_log.insert(),
            [
                {
                    "target": "salesforce",
                    "object_name": "Contact",
                    "record_id": "003A",
                    "field": "A__c",
                    "new_value": 1,
                    "written_at": OLD,
                }
            ],
        )


def test_trim_keeps_recent_open_latest_and_audit(engine: Engine) -> None:
    _seed(engine)

    deleted = trim_history(engine, keep_days=180, now=NOW)

    assert deleted == {"runs": 1, "writeback_outbox": 1, "quarantine": 1}
    with engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.id).order_by(runs.c.id)).scalars().all() == [
            2,
            3,
            4,
            5,
        ]
        assert sorted(conn.execute(sa.select(writeback_outbox.c.record_id)).scalars()) == [
            "003B",
            "003C",
        ]
        assert sorted(conn.execute(sa.select(quarantine.c.record_id)).scalars()) == ["003B", "003C"]
        assert conn.execute(sa.select(sa.func.count()).select_from(writeback_log)).scalar() == 1


def test_trim_is_idempotent_and_honours_the_window(engine: Engine) -> None:
    _seed(engine)

    assert trim_history(engine, keep_days=365, now=NOW) == {
        "runs": 0,
        "writeback_outbox": 0,
        "quarantine": 0,
    }
    trim_history(engine, keep_days=180, now=NOW)
    assert trim_history(engine, keep_days=180, now=NOW) == {
        "runs": 0,
        "writeback_outbox": 0,
        "quarantine": 0,
    }
