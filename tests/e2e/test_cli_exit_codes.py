"""CLI exit codes on real runs against the sandbox: 0 ok, 1 failed or stopped short, 2 bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sync_service.cli import main
from sync_service.store.engine import make_engine
from sync_service.store.models import runs

REPO = Path(__file__).resolve().parents[2]


def last_status(job: str) -> str:
    engine = make_engine(os.environ["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            q = sa.select(runs.c.status).where(runs.c.job == job).order_by(runs.c.id.desc())
            return str(conn.execute(q).scalars().first())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    with Sandbox(accounts=12, seed=9) as sb:
        yield sb


@pytest.fixture
def sb(
    module_sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    """The sandbox, with the service's environment pointed at it and a fresh store."""
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith(("SALESFORCE_", "GAINSIGHT_", "SYNC_")) or var == "CURL_CA_BUNDLE":
            monkeypatch.delenv(var)
    for key, value in module_sandbox.env("client_credentials").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GAINSIGHT_BASE_URL")
    monkeypatch.delenv("GAINSIGHT_ACCESS_KEY")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SYNC_CONFIG", str(REPO / "config" / "settings.yaml"))
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(REPO / "mappings"))
    monkeypatch.setenv("SYNC_RULES_FILE", str(REPO / "config" / "rules.yaml"))
    monkeypatch.setenv("SYNC_LOG_FORMAT", "text")
    module_sandbox.faults.reset()
    module_sandbox.api_used = 0
    yield module_sandbox
    module_sandbox.faults.reset()
    module_sandbox.api_used = 0


def test_a_successful_cycle_exits_0(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run-once", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{") :])
    assert [(r["job"], r["status"]) for r in report["runs"]] == [
        ("salesforce", "success"),
        ("evaluate", "success"),
        ("writeback", "success"),
        ("match", "success"),  # config/settings.yaml names config/matching.yaml
    ]


def test_a_failed_sync_exits_1_without_a_traceback(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", "not-the-secret")
    assert main(["sync", "--source", "salesforce"]) == 1
    assert last_status("salesforce") == "failed"
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "not-the-secret" not in captured.out + captured.err


def test_a_run_stopped_short_by_the_api_budget_exits_1(sb: Sandbox) -> None:
    sb.api_used = 79_995  # of 100,000: the default budget_share (80%) is passed within a few calls
    assert main(["sync", "--source", "salesforce"]) == 1
    assert last_status("salesforce") == "partial"
    sb.api_used = 0
    assert main(["sync", "--source", "salesforce"]) == 0  # resumes and finishes
    assert last_status("salesforce") == "success"


def test_explaining_an_unknown_id_is_bad_input_exit_2(sb: Sandbox) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["explain", "003000000000000AAA"]) == 2
