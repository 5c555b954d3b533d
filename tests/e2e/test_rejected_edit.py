"""A mapping or rules edit made invalid while the service runs: the last valid one keeps running,
and the run says so everywhere the on-call person looks (exit code, stdout, /readyz, metrics, one
webhook message)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from sync_service.cli import main
from sync_service.commands import run_once
from sync_service.context import AppContext
from sync_service.ops.health import readiness
from sync_service.ops.metrics import build_registry, render
from sync_service.ops.scheduler import execute_job

REPO = Path(__file__).resolve().parents[2]


class Hook:
    """A local webhook that keeps every message posted to it."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.messages.append(json.loads(body)["text"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "mappings", tmp_path / "mappings")
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "rules.yaml", tmp_path / "config" / "rules.yaml")
    (tmp_path / "config" / "settings.yaml").write_text(
        "gainsight: {enabled: false}\njobs:\n  salesforce: {interval_minutes: 30}\n"
    )
    return tmp_path


def _break_rules(project: Path) -> None:
    rules = project / "config" / "rules.yaml"
    text = rules.read_text()
    rules.write_text(text.replace("      min: 6\n      max: 10\n", "      min: 10\n      max: 6\n"))


def _break_mappings(project: Path) -> None:
    sf = project / "mappings" / "salesforce.yaml"
    sf.write_bytes(sf.read_bytes() + b"\n# r\xe9sum\xe9 of the last edit\n")


def test_a_rejected_edit_under_serve_keeps_the_last_valid_config_and_is_reported_once(
    project: Path, db_url: str, hook: Hook
) -> None:
    with Sandbox(accounts=12, seed=5) as sb:
        env = {**sb.env("client_credentials"), "DATABASE_URL": db_url, "SYNC_WEBHOOK_URL": hook.url}
        ctx = AppContext(config_path=str(project / "config" / "settings.yaml"), env=env)
        try:
            first = execute_job(ctx, "salesforce")
            assert first is not None
            assert first.status == "success"
            assert readiness(ctx.engine)["ready"] is True

            _break_rules(project)
            _break_mappings(project)  # a Latin-1 byte: once a UnicodeDecodeError crash
            second = execute_job(ctx, "salesforce")
            assert second is not None
            assert second.status == "success"  # the last valid mappings ran
            assert any("byte 0xe9 is not UTF-8" in p for p in second.config_errors)

            report = readiness(ctx.engine)
            assert report["ready"] is False
            assert set(report["rejected_edit"]["jobs"]) >= {"salesforce", "evaluate"}
            assert any(
                "min (10) is above max (6)" in p for p in report["rejected_edit"]["problems"]
            )

            metrics = render(build_registry(ctx.engine)).decode()
            assert 'advocate_rejected_config_edits_total{job="salesforce"} 1.0' in metrics
            assert 'advocate_rejected_config_edits_total{job="evaluate"} 1.0' in metrics

            execute_job(ctx, "salesforce")  # still broken: no second message
            rejected = [m for m in hook.messages if "edit was rejected" in m]
            assert len(rejected) == 2  # one per edit: the mapping's, the rules'
            assert all(m.count("\n") == 0 for m in rejected)
        finally:
            ctx.close()


def test_run_once_refuses_to_start_on_a_broken_file_with_validates_lines(
    project: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _break_rules(project)
    monkeypatch.setenv("DATABASE_URL", db_url)
    cfg = str(project / "config" / "settings.yaml")
    assert main(["--config", cfg, "validate"]) == 2
    validate_lines = [x for x in capsys.readouterr().err.splitlines() if "min (10)" in x]
    assert main(["--config", cfg, "run-once"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == validate_lines


def test_run_once_with_an_edit_rejected_mid_run_exits_1_with_a_one_line_summary(
    project: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class BreakRulesDuringSync(run_once.StageProgress):
        def __call__(self, label: str, n: int, total: int | None = None) -> None:
            if label.startswith("salesforce."):
                _break_rules(project)  # the second time there is nothing left to replace

    with Sandbox(accounts=12, seed=5) as sb:
        for k, v in {**sb.env("client_credentials"), "DATABASE_URL": db_url}.items():
            monkeypatch.setenv(k, v)
        cfg = str(project / "config" / "settings.yaml")
        # a first, valid run leaves the last valid policy behind
        assert main(["--config", cfg, "run-once"]) == 0
        capsys.readouterr()
        monkeypatch.setattr(run_once, "StageProgress", BreakRulesDuringSync)
        assert main(["--config", cfg, "run-once"]) == 1
    out = capsys.readouterr().out.splitlines()
    summary = [line for line in out if line.startswith("rejected edit:")]
    assert len(summary) == 1
    assert "the last valid configuration ran (evaluate)" in summary[0]
    assert "min (10) is above max (6)" in summary[0]
