from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MAPPINGS = REPO / "mappings"


@pytest.fixture
def write_mapping(tmp_path: Path) -> Callable[..., Path]:
    """Write ``text`` (dedented) as ``mappings/<name>`` under tmp_path; return the directory."""

    def write(text: str, name: str = "salesforce.yaml") -> Path:
        d = tmp_path / "mappings"
        d.mkdir(exist_ok=True)
        (d / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return d

    return write
