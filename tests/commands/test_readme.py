"""The README's command table is true: every flag ``--help`` shows is documented there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sync_service.cli import main
from sync_service.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def _flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> set[str]:
    assert main([*argv, "--help"]) == 0
    return set(FLAG.findall(capsys.readouterr().out)) - {"--help"}


def test_every_command_flag_is_in_the_readme(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("## Configuration reference", 1)[0]
    missing = sorted(flag for flag in _flags([], capsys) if flag not in table)
    for name in COMMANDS:
        rows = [line for line in table.splitlines() if line.startswith(f"| `{name}")]
        assert rows, f"no row for {name}"
        missing += sorted(f"{name} {f}" for f in _flags([name], capsys) if f not in rows[0])
    assert missing == []
