"""The CLI's exit codes and messages: 0 ok, 1 run failed, 2 bad input or config."""

from __future__ import annotations

import os
import socket
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


ROOT = Path(__file__).resolve().parents[2]


def test_an_unexpected_error_is_one_line_and_its_details_go_to_the_error_log(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    import tempfile

    from sync_service.commands import db

    def boom(*_args: object) -> int:
        raise KeyError("nobody planned for this")

    monkeypatch.setattr(db, "run", boom)
    monkeypatch.setattr(tempfile, "tempdir", str(workdir))
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: unexpected error in 'db': KeyError: 'nobody planned for this'")
    assert "Traceback" not in err
    details = (workdir / "advocate-sync-errors.log").read_text()
    assert "Traceback" in details
    assert "nobody planned for this" in details


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -1` having exited: every write gets EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sync_service", "--help"],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 0


def test_status_piped_into_a_closed_reader_prints_no_traceback(tmp_path: Path, sqlite_url: str):
    from sync_service.store.engine import make_engine, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    engine.dispose()
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sync_service", "status"],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**env, "DATABASE_URL": sqlite_url},
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr
    assert proc.returncode == 0


def test_a_second_sandbox_on_a_used_port_is_one_line_and_leaves_no_folder(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "sync_service", "sandbox", "--accounts", "5"),
                *("--port", str(port), "--gainsight-port", "0"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TMPDIR": str(tmp_path)},
            check=False,
        )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: --port {port}: cannot listen there")
    assert not list(tmp_path.glob("advocate-sandbox-*"))


def test_a_sandbox_that_cannot_bind_removes_its_key_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import tempfile

    from sandbox import Sandbox

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sb = Sandbox(accounts=3, port=taken.getsockname()[1])
        with pytest.raises(OSError, match="in use"):
            sb.start()
    assert not list(tmp_path.glob("advocate-sandbox-*"))


def test_a_named_command_loads_only_its_own_module():
    """`run-once` on a schedule should not pay for FastAPI, matplotlib or the sandbox."""
    code = (
        "import sys\n"
        "from sync_service.cli import main\n"
        "try:\n"
        "    main(['--config', 'none.yaml', 'status', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('sync_service.commands.'))\n"
        "print(' '.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "sync_service.commands.status" in out
    assert "sync_service.commands.report" not in out
    assert "sync_service.commands.serve" not in out


def test_help_without_a_command_still_lists_every_command(capsys: pytest.CaptureFixture[str]):
    assert main(["--debug", "--help"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in COMMANDS)


def test_a_misspelt_command_gets_the_list_of_choices(capsys: pytest.CaptureFixture[str]):
    assert main(["--config", "x.yaml", "stauts"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'stauts'" in err
    assert "'status'" in err
