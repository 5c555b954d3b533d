"""/healthz, /readyz and /metrics, with metrics computed from the store."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from sync_service.api.server import ApiServer
from sync_service.ops.metrics import SKIPPED_RUNS
from sync_service.store.engine import make_engine
from sync_service.store.models import quarantine, runs, writeback_outbox
from tests.api.support import make_state

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _run(engine: Engine, job: str, status: str, start: datetime, seconds: float, **kw: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            runs.insert().values(
                job=job,
                status=status,
                started_at=start,
                finished_at=None if status == "running" else start + timedelta(seconds=seconds),
                counts=kw.get("counts", {}),
                api_calls=kw.get("api_calls", {}),
            )
        )


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        exc.close()
        return exc.code, body


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def server(engine: Engine) -> Iterator[ApiServer]:
    srv = ApiServer(make_state(engine), "127.0.0.1", 0).start()
    yield srv
    srv.stop()


def test_healthz_answers_while_alive(server: ApiServer) -> None:
    assert _get(f"http://127.0.0.1:{server.port}/healthz") == (200, "ok\n")
    assert _get(f"http://127.0.0.1:{server.port}/nope")[0] == 404


def test_metrics_are_computed_from_the_store_and_parse(engine: Engine, server: ApiServer) -> None:
    _run(engine, "salesforce", "success", T0, 12.5)
    _run(
        engine,
        "salesforce",
        "partial",
        T0 + timedelta(hours=1),
        30,
        counts={
            "records.Contact": 120,
            "records.Account": 40,
            "quarantined.Contact": 2,
            "writeback.success": 17,
            "writeback.failed": 3,
            "memory.peak_mib": 412,
            "note": "not a number",
        },
        api_calls={"salesforce": {"calls": 9, "used": 9_000, "limit": 100_000}},
    )
    _run(engine, "gainsight", "failed", T0, 4, api_calls={"gainsight": {"calls": 2}})
    _run(engine, "reconcile", "running", T0 + timedelta(hours=2), 0)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            quarantine.insert(),
            [
                {
                    "connector": "salesforce",
                    "stream": "Contact",
                    "reason": reason,
                    "created_at": now,
                    "resolved": reason == "fixed",
                }
                for reason in ("x", "y", "fixed")
            ],
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
                for i, state in enumerate(["pending", "pending", "failed", "done"])
            ],
        )
    SKIPPED_RUNS.labels(job="metrics-test").inc()

    status, text = _get(f"http://127.0.0.1:{server.port}/metrics")
    assert status == 200
    m = _samples(text)
    sf = (("job", "salesforce"),)
    assert m[("advocate_store_up", ())] == 1
    assert m[("advocate_runs_total", (("job", "salesforce"), ("status", "success")))] == 1
    assert m[("advocate_runs_total", (("job", "salesforce"), ("status", "partial")))] == 1
    assert m[("advocate_runs_in_progress", (("job", "reconcile"),))] == 1
    assert m[("advocate_last_run_duration_seconds", sf)] == 30
    assert m[("advocate_last_run_status", (*sf, ("status", "partial")))] == 1
    assert m[("advocate_last_run_status", (*sf, ("status", "success")))] == 0
    assert (
        m[("advocate_last_success_timestamp_seconds", sf)]
        == (T0 + timedelta(seconds=12.5)).timestamp()
    )
    assert ("advocate_last_success_timestamp_seconds", (("job", "gainsight"),)) not in m
    assert m[("advocate_last_run_records", (*sf, ("stream", "Contact")))] == 120
    assert m[("advocate_last_run_records", (*sf, ("stream", "Account")))] == 40
    assert m[("advocate_last_run_quarantined", (*sf, ("stream", "Contact")))] == 2
    assert m[("advocate_last_run_writeback", (("job", "salesforce"), ("result", "failed")))] == 3
    assert m[("advocate_last_run_api_calls", (*sf, ("system", "salesforce")))] == 9
    assert m[("advocate_last_run_peak_memory_mib", sf)] == 412
    assert m[("advocate_last_run_api_calls", (("job", "gainsight"), ("system", "gainsight")))] == 2
    assert m[("advocate_api_budget_remaining", (("system", "salesforce"),))] == 91_000
    assert m[("advocate_api_budget_limit", (("system", "salesforce"),))] == 100_000
    assert ("advocate_api_budget_used", (("system", "gainsight"),)) not in m  # never reported
    stream = (("connector", "salesforce"), ("stream", "Contact"))
    assert m[("advocate_quarantine_records", stream)] == 2
    assert m[("advocate_writeback_outbox", (("state", "pending"),))] == 2
    assert m[("advocate_writeback_outbox", (("state", "failed"),))] == 1
    assert m[("advocate_skipped_runs_total", (("job", "metrics-test"),))] >= 1
    assert m[("process_resident_memory_bytes", ())] > 0


def test_readyz_follows_the_newest_run_of_each_job(engine: Engine, server: ApiServer) -> None:
    url = f"http://127.0.0.1:{server.port}/readyz"
    status, body = _get(url)
    assert status == 200
    assert json.loads(body)["store"] == "ok"
    _run(engine, "salesforce", "failed", T0, 1)
    status, body = _get(url)
    assert status == 503
    assert json.loads(body)["jobs"]["salesforce"]["status"] == "failed"
    _run(engine, "salesforce", "success", T0 + timedelta(minutes=5), 1)  # the next run fixed it
    assert _get(url)[0] == 200


def test_readyz_is_503_when_the_scheduler_stopped(engine: Engine) -> None:
    running = [True]
    srv = ApiServer(
        make_state(engine, scheduler_running=lambda: running[0]), "127.0.0.1", 0
    ).start()
    try:
        assert _get(f"http://127.0.0.1:{srv.port}/readyz")[0] == 200
        running[0] = False
        status, body = _get(f"http://127.0.0.1:{srv.port}/readyz")
        assert status == 503
        assert json.loads(body)["scheduler"] == "stopped"
    finally:
        srv.stop()


def test_an_unreachable_store_is_not_ready_and_metrics_say_so() -> None:
    dead = make_engine(
        "postgresql://postgres@127.0.0.1:9/none", connect_args={"connect_timeout": 2}
    )
    srv = ApiServer(make_state(dead), "127.0.0.1", 0).start()
    try:
        status, body = _get(f"http://127.0.0.1:{srv.port}/readyz")
        assert status == 503
        assert json.loads(body)["store"] == "unreachable"
        status, text = _get(f"http://127.0.0.1:{srv.port}/metrics")
        assert status == 200
        assert _samples(text)[("advocate_store_up", ())] == 0
    finally:
        srv.stop()
        dead.dispose()


def test_metrics_scrape_is_bounded_to_grouped_queries(engine: Engine, server: ApiServer) -> None:
    for i in range(30):
        _run(engine, f"job{i % 3}", "success", T0 + timedelta(minutes=i), 1)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert _get(f"http://127.0.0.1:{server.port}/metrics")[0] == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 8  # a fixed number of queries, whatever the history's length
