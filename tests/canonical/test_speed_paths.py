"""SYNC_SPEED_PATHS_OFF turns named speed paths off, all of them, or is refused when unknown."""

from __future__ import annotations

import pytest

from canonical.errors import SettingsError
from canonical.speed_paths import SPEED_PATHS, SPEED_PATHS_OFF, speed_path_on


def test_every_speed_path_is_on_by_default() -> None:
    assert all(speed_path_on(name, {}) for name in SPEED_PATHS)


def test_named_paths_are_off_and_the_others_stay_on() -> None:
    env = {SPEED_PATHS_OFF: " upsert_fast_path, GC_THRESHOLD "}
    off = {name for name in SPEED_PATHS if not speed_path_on(name, env)}
    assert off == {"upsert_fast_path", "gc_threshold"}


def test_all_turns_every_path_off() -> None:
    assert not any(speed_path_on(name, {SPEED_PATHS_OFF: "all"}) for name in SPEED_PATHS)


def test_an_unknown_name_is_a_settings_error_naming_the_known_ones() -> None:
    with pytest.raises(SettingsError, match="unknown speed path upsert_fastpath; use 'all'") as exc:
        speed_path_on("gc_threshold", {SPEED_PATHS_OFF: "upsert_fastpath"})
    assert exc.value.exit_code == 2
    assert "reader_pragmas" in str(exc.value)


def test_the_process_environment_is_read_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SPEED_PATHS_OFF, "reader_pragmas")
    assert not speed_path_on("reader_pragmas")
    monkeypatch.delenv(SPEED_PATHS_OFF)
    assert speed_path_on("reader_pragmas")
