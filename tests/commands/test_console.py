"""Progress bars (rich, on a terminal only) and the rejected-edit summary line."""

from __future__ import annotations

import io
import logging
import sys
from datetime import UTC, datetime

import pytest
from rich.console import Console

from sync_service.commands.console import StageProgress, rejected_edit_line
from sync_service.ops.runs import Run


def test_progress_shows_every_stage_with_its_total_on_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with StageProgress(console) as bars:
        bars("salesforce.accounts", 2000, 5000)
        bars("salesforce.accounts", 500, 5000)
        bars("evaluate.contacts", 10, 40)
        bars("writeback.Contact", 7, None)
    text = out.getvalue()
    assert "salesforce.accounts" in text
    assert "2500/5000" in text
    assert "evaluate.contacts" in text
    assert "10/40" in text
    assert "writeback.Contact" in text


def test_progress_is_silent_when_not_on_a_terminal():
    out = io.StringIO()
    with StageProgress(Console(file=out, force_terminal=False)) as bars:
        bars("salesforce.accounts", 2000, 5000)
    assert out.getvalue() == ""


def _run(job: str, errors: list[str]) -> Run:
    return Run(id=1, job=job, started_at=datetime.now(UTC), config_errors=errors)


def test_a_rejected_edit_is_summed_up_in_one_line():
    line = rejected_edit_line(
        [_run("salesforce", ["m.yaml:3:1: bad", "m.yaml:9:1: worse"]), _run("evaluate", [])]
    )
    assert line is not None
    assert "\n" not in line
    assert line.startswith("rejected edit: 2 problem(s), the last valid configuration ran")
    assert "(salesforce)" in line
    assert "m.yaml:3:1: bad (+1 more)" in line
    assert rejected_edit_line([_run("evaluate", [])]) is None


def test_log_lines_during_progress_go_above_the_bars_not_into_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        out = io.StringIO()
        with StageProgress(Console(file=out, force_terminal=True, width=100)) as bars:
            bars("evaluate.contacts", 5, 10)
            logging.getLogger("tests").warning("a log line while the bars are live")
        assert handler.stream is terminal  # given back
    finally:
        root.removeHandler(handler)
    assert "a log line while the bars are live\n" in out.getvalue()
    assert terminal.getvalue() == ""
