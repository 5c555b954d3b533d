"""The tombstones' key and keyed hashes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from canonical.errors import SettingsError
from canonical.sfid import to18
from sync_service.privacy.keys import KeyedHasher, load_key, normalise_email
from sync_service.settings import PrivacySettings


def test_a_15_character_id_and_its_18_character_form_hash_alike():
    hasher = KeyedHasher(b"k" * 32)
    long_id = to18("0035g00000AbCdE")
    assert len(long_id) == 18
    assert hasher.of_id("0035g00000AbCdE") == hasher.of_id(long_id)
    # a tool that upper-cased the suffix still names the same record
    assert hasher.of_id(long_id[:15] + long_id[15:].lower()) == hasher.of_id(long_id)
    assert hasher.of_id("0035g00000abcde") != hasher.of_id("0035g00000AbCdE")


def test_emails_hash_alike_whatever_their_case_and_spaces():
    hasher = KeyedHasher(b"k" * 32)
    assert hasher.of_email("  Ann.Lee@Example.COM ") == hasher.of_email("ann.lee@example.com")
    assert normalise_email("no address") is None


def test_the_hash_depends_on_the_key():
    assert KeyedHasher(b"a" * 32).of_email("x@y.io") != KeyedHasher(b"b" * 32).of_email("x@y.io")


def test_a_key_file_is_created_owner_only_on_first_use_and_reused(tmp_path: Path):
    settings = PrivacySettings()
    first = load_key(settings, tmp_path / "var")
    path = tmp_path / "var" / "privacy.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(settings, tmp_path / "var") == first
    assert len(first) == 32


def test_a_configured_key_wins_and_a_short_one_is_refused(tmp_path: Path):
    assert load_key(PrivacySettings(key=SecretStr("x" * 40)), tmp_path) == b"x" * 40
    assert not (tmp_path / "privacy.key").exists()
    with pytest.raises(SettingsError, match="shorter than 16"):
        load_key(PrivacySettings(key=SecretStr("short")), tmp_path)


def test_an_unreadable_key_file_is_a_settings_error(tmp_path: Path):
    (tmp_path / "privacy.key").write_text("not hex\n")
    with pytest.raises(SettingsError, match="restore it"):
        load_key(PrivacySettings(), tmp_path)
