"""Runtime reload: a valid edit is picked up, an invalid one is rejected whole and the last
valid mapping keeps running, across a restart too."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from canonical.errors import MappingError
from canonical.model import Entity
from sync_service.mapping.model import Mappings
from sync_service.mapping.runtime import MappingStore

Write = Callable[..., Path]

V1 = """
entities:
  contacts:
    object: Contact
    fields:
      email: Email
writeback:
  contact:
    object: Contact
    fields: {status: Advocate_Status__c}
"""
V2 = V1.replace("Advocate_Status__c", "Advocate_State__c")
BROKEN = V1.replace("email: Email", "emial: Email")


def _status_field(store_mappings: Mappings) -> str:
    assert store_mappings.salesforce is not None
    target = store_mappings.salesforce.writeback_for("contact")
    assert target is not None
    return target.fields["status"]


def test_valid_edit_is_picked_up_at_the_next_refresh(write_mapping: Write, tmp_path: Path) -> None:
    d = write_mapping(V1)
    store = MappingStore(d, tmp_path / "var" / "snap.json")
    first = store.refresh()
    assert first.changed
    assert first.error is None
    assert _status_field(first.mappings) == "Advocate_Status__c"
    assert store.refresh().changed is False

    write_mapping(V2)
    second = store.refresh()
    assert second.changed
    assert _status_field(second.mappings) == "Advocate_State__c"
    # the writeback field is read back for the diff, so the contacts stream changed
    assert second.changed_streams == [("salesforce", Entity.CONTACT)]
    assert store.current is second.mappings


def test_invalid_edit_is_rejected_and_the_last_valid_mapping_keeps_running(
    write_mapping: Write, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = write_mapping(V1)
    store = MappingStore(d, tmp_path / "snap.json")
    good = store.refresh().mappings

    write_mapping(BROKEN)
    with caplog.at_level(logging.ERROR, logger="sync_service.mapping.runtime"):
        result = store.refresh()
    assert result.mappings is good
    assert result.changed is False
    assert result.error is not None
    assert result.problems == [
        f"{d}/salesforce.yaml:5:7: contacts has no canonical field 'emial'; "
        "did you mean 'email'? (map other CRM fields under 'extra:')"
    ]
    assert "mapping edit rejected (1 problem(s))" in caplog.text
    assert "has no canonical field 'emial'" in caplog.text

    write_mapping(V2)  # fixed: the new version takes over
    fixed = store.refresh()
    assert fixed.error is None
    assert _status_field(fixed.mappings) == "Advocate_State__c"


def test_last_valid_mapping_survives_a_restart(write_mapping: Write, tmp_path: Path) -> None:
    d = write_mapping(V1)
    snap = tmp_path / "var" / "mappings.last-valid.json"
    MappingStore(d, snap).refresh()
    saved = json.loads(snap.read_text())
    assert set(saved["files"]) == {"salesforce.yaml"}

    write_mapping(BROKEN)
    restarted = MappingStore(d, snap)
    result = restarted.refresh()
    assert result.from_snapshot
    assert result.error is not None
    assert result.changed  # first mappings of this process
    assert _status_field(result.mappings) == "Advocate_Status__c"
    assert result.mappings.path == snap
    # and it keeps them on the next refresh too
    again = restarted.refresh()
    assert again.mappings is result.mappings
    assert again.changed is False


def test_snapshot_follows_the_latest_valid_version(write_mapping: Write, tmp_path: Path) -> None:
    d = write_mapping(V1)
    snap = tmp_path / "snap.json"
    store = MappingStore(d, snap)
    store.refresh()
    write_mapping(V2)
    digest = store.refresh().mappings.digest
    assert json.loads(snap.read_text())["digest"] == digest
    write_mapping(BROKEN)
    store.refresh()
    assert json.loads(snap.read_text())["digest"] == digest  # a rejected edit is never saved


def test_broken_first_start_without_snapshot_raises(write_mapping: Write, tmp_path: Path) -> None:
    d = write_mapping(BROKEN)
    with pytest.raises(MappingError) as info:
        MappingStore(d, tmp_path / "none.json").refresh()
    assert "has no canonical field 'emial'" in info.value.problems[0]


def test_unreadable_snapshot_is_ignored(write_mapping: Write, tmp_path: Path) -> None:
    d = write_mapping(BROKEN)
    snap = tmp_path / "snap.json"
    snap.write_text("{not json")
    with pytest.raises(MappingError):
        MappingStore(d, snap).refresh()


def test_store_without_snapshot_keeps_memory_only(write_mapping: Write) -> None:
    d = write_mapping(V1)
    store = MappingStore(d, None)
    good = store.refresh().mappings
    write_mapping(BROKEN)
    assert store.refresh().mappings is good


def test_unchanged_files_are_not_parsed_again_but_errors_stay_reported(
    write_mapping: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync_service.mapping import runtime

    calls: list[Path] = []
    real = runtime.load_mappings

    def counting(directory: Path) -> Mappings:
        calls.append(directory)
        return real(directory)

    monkeypatch.setattr(runtime, "load_mappings", counting)
    d = write_mapping(V1)
    store = MappingStore(d, tmp_path / "snap.json")
    store.refresh()
    store.refresh()
    assert len(calls) == 1

    write_mapping(BROKEN)
    first = store.refresh()
    again = store.refresh()
    assert len(calls) == 2
    assert again.error is first.error
    assert again.problems == first.problems
    assert again.mappings is first.mappings


def test_a_new_misnamed_file_counts_as_a_change(write_mapping: Write, tmp_path: Path) -> None:
    d = write_mapping(V1)
    store = MappingStore(d, tmp_path / "snap.json")
    store.refresh()
    write_mapping(V1, "gainsigth.yaml")
    result = store.refresh()
    assert result.error is not None
    assert "unknown mapping file" in result.problems[0]
