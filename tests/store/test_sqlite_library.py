"""SQLite's memory statistics (a speed path): off before the first connection, never under one."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from canonical.speed_paths import SPEED_PATHS_OFF

ROOT = Path(__file__).resolve().parents[2]

# the statistics are on when sqlite3_memory_used() reports the memory an open connection holds
_PROBE = textwrap.dedent(
    """
    import ctypes, ctypes.util, sqlite3, sys
    from sync_service.store.sqlite_library import memstatus_off

    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    early = sqlite3.connect(":memory:") if sys.argv[1] == "open-first" else None
    off = memstatus_off()
    db = sqlite3.connect(sys.argv[2])
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    total = db.execute("SELECT sum(x) FROM t").fetchone()[0]
    print(off, lib.sqlite3_memory_used() > 0, total, memstatus_off())
    """
)


def _probe(mode: str, tmp_path: Path, speed_paths_off: str = "") -> list[str]:
    if ctypes.util.find_library("sqlite3") is None:
        pytest.skip("no shared SQLite library: this Python's sqlite3 carries its own")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, str(tmp_path / "t.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, SPEED_PATHS_OFF: speed_paths_off},
    )
    return out.stdout.split()


def test_statistics_are_switched_off_before_the_first_connection(tmp_path: Path) -> None:
    # off, nothing counted any more, SQLite works as before, and a second call is a no-op
    assert _probe("fresh", tmp_path) == ["True", "False", "499500", "True"]


def test_an_open_connection_leaves_the_library_alone(tmp_path: Path) -> None:
    # shutting SQLite down under an open connection would break it: nothing is changed
    assert _probe("open-first", tmp_path) == ["False", "True", "499500", "False"]


def test_switched_off_the_library_keeps_its_defaults_and_works_the_same(tmp_path: Path) -> None:
    # twin: the statistics stay on (the reference path), and the same work gives the same sum
    assert _probe("fresh", tmp_path, "sqlite_memstatus") == ["False", "True", "499500", "False"]
