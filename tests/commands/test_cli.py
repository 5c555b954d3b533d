"""The CLI's exit codes and messages: 0 ok, 1 run failed, 2 bad input or config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sync_service.cli import main
from sync_service.commands import COMMANDS


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("SYNC_CONFIG", "DATABASE_URL", "SYNC_HTTP_PORT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_db_upgrade_succeeds_and_reports_the_revision(
    workdir: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["db", "upgrade"]) == 0
    assert "schema revision" in capsys.readouterr().out
    assert (workdir / "var" / "advocate.db").exists()


def test_db_current_after_upgrade_says_up_to_date(
    workdir: Path, capsys: pytest.CaptureFixture[str]
):
    main(["db", "upgrade"])
    assert main(["db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_bad_setting_exits_2_with_one_line_and_no_traceback(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("SYNC_HTTP_PORT", "not-a-port")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: env SYNC_HTTP_PORT: http_port:")


def test_missing_config_file_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--config", "nowhere.yaml", "db", "upgrade"]) == 2
    assert "nowhere.yaml: file not found" in capsys.readouterr().err


def test_unreachable_database_is_a_failed_run_exit_1(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the database" in err
    assert "Traceback" not in err


def test_unknown_command_is_bad_input_exit_2(workdir: Path):
    assert main(["frobnicate"]) == 2


def test_help_exits_0(workdir: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", ["status", "explain", "run-once"])
def test_json_flag_is_offered(command: str, capsys: pytest.CaptureFixture[str]):
    assert main([command, "--help"]) == 0
    assert "--json" in capsys.readouterr().out


def test_module_entry_point_runs_as_a_process(workdir: Path):
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "sync_service", "db", "upgrade"],
        cwd=workdir,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
