"""The deployable Salesforce metadata (salesforce/force-app) matches the shipped mapping."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest

from canonical.model import Entity, Status
from sync_service.mapping import load_mappings
from sync_service.mapping.asks import AskFields
from sync_service.mapping.online import validate_online
from tests.mapping.sfmeta import (
    DEFAULT,
    DESCRIBE_TYPES,
    REPO,
    SFDX,
    metadata_describe,
    permissions,
    text_of,
)


def test_every_metadata_file_is_well_formed_and_named_after_its_field() -> None:
    files = sorted(DEFAULT.rglob("*-meta.xml"))
    assert len(files) >= 20
    for path in files:
        root = ET.parse(path).getroot()
        assert root.tag.startswith("{http://soap.sforce.com/2006/04/metadata}")
        if path.name.endswith(".field-meta.xml"):
            assert text_of(root, "fullName") == path.name.removesuffix(".field-meta.xml")
            assert text_of(root, "type") in DESCRIBE_TYPES


def test_sfdx_project_points_at_force_app() -> None:
    project = json.loads((SFDX / "sfdx-project.json").read_text())
    assert project["packageDirectories"] == [{"path": "force-app", "default": True}]
    assert (SFDX / project["packageDirectories"][0]["path"]).is_dir()


def test_default_writeback_fields_are_deployed_with_the_right_types() -> None:
    source = load_mappings(REPO / "mappings").salesforce
    assert source is not None
    only_writeback = dataclasses.replace(source, entities={})
    report = validate_online(only_writeback, metadata_describe)
    assert report.problems == []
    assert report.warnings == []
    for target in source.writeback:
        described = metadata_describe(target.object_name)
        if target.entity == "opportunity":  # the matching's text, not an evaluation's status
            assert described["Suggested_References__c"].type == "textarea"
            continue
        status = described[target.fields["status"]]
        assert set(status.picklist_values) == {s.value for s in Status}
        assert status.restricted_picklist


def test_permission_set_edits_only_the_writeback_and_guard_fields() -> None:
    source = load_mappings(REPO / "mappings").salesforce
    assert source is not None
    writable = {f"{t.object_name}.{f}" for t in source.writeback for f in t.fields.values()}
    guard = AskFields.from_mapping(source)
    assert guard is not None
    perms = permissions()
    # A required field (Requested_Date__c) takes no field permission: it is always editable.
    guard_written = {name for name in guard.written() if name in perms}
    assert guard.written() - guard_written == {"Reference_Request__c.Requested_Date__c"}
    assert {name for name, (_, edit) in perms.items() if edit} == writable | guard_written
    # The requester's override box is read, never written.
    assert perms["Reference_Request__c.Guard_Override__c"] == (True, False)
    assert all(read for read, _ in perms.values())
    for t in source.writeback:  # the override is a person's switch: readable, never written
        if t.override_field is None:  # the suggestions on a deal have none
            continue
        assert perms[f"{t.object_name}.{t.override_field}"] == (True, False)


@pytest.mark.parametrize("entity", [Entity.ASK])
def test_custom_objects_and_fields_the_mapping_reads_are_deployed(entity: Entity) -> None:
    source = load_mappings(REPO / "mappings").salesforce
    assert source is not None
    em = source.entities[entity]
    assert (DEFAULT / "objects" / em.object_name / f"{em.object_name}.object-meta.xml").is_file()
    described = metadata_describe(em.object_name)
    for name in em.stream_spec().fields:
        assert name in described, f"{em.object_name}.{name} is not in salesforce/force-app"


def test_consent_field_is_deployed() -> None:
    source = load_mappings(REPO / "mappings").salesforce
    assert source is not None
    opted_in = next(f for f in source.entities[Entity.CONTACT].fields if f.name == "opted_in")
    assert metadata_describe("Contact")[opted_in.crm_field].type == "boolean"


def test_every_custom_field_the_default_mapping_reads_is_deployed() -> None:
    source = load_mappings(REPO / "mappings").salesforce
    assert source is not None
    missing = [
        f"{em.object_name}.{name}"
        for em in source.entities.values()
        for name in em.stream_spec().fields
        if name.endswith("__c") and name not in metadata_describe(em.object_name)
    ]
    assert missing == []
