"""Online validation against a described CRM schema (a fake describe; the connector's own
FieldInfo is used so the Protocol is held to what the connector really returns)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from canonical.errors import FatalApiError
from connectors.salesforce.describe import FieldInfo
from sync_service.mapping import load_mappings
from sync_service.mapping.online import validate_online

Write = Callable[..., Path]

STATUSES = ("Eligible", "Fatigued", "Suspended", "Not Eligible", "Opted Out")


def _f(name: str, type_: str = "string", **kw: object) -> FieldInfo:
    return FieldInfo(name=name, type=type_, **kw)  # type: ignore[arg-type]


WRITEBACK_FIELDS = [
    _f("Advocate_Status__c", "picklist", updateable=True, picklist_values=STATUSES),
    _f("Advocate_Eligible__c", "boolean", updateable=True),
    _f("Advocate_Score__c", "double", updateable=True),
    _f("Advocate_Reason__c", "string", updateable=True),
    _f("Advocate_Next_Available__c", "date", updateable=True),
    _f("Advocate_Override__c", "boolean", updateable=True),
]

SCHEMA: dict[str, list[FieldInfo]] = {
    "Account": [
        _f("Id", "id"),
        _f("SystemModstamp", "datetime"),
        _f("Name"),
        _f("ARR__c", "currency"),
        _f("Tier__c", "picklist", picklist_values=("Gold", "Silver")),
        _f("Health__c", "double", calculated=True, formula="x"),
        _f("Since__c", "date"),
        _f("Notes__c", "string", updateable=True),
        *WRITEBACK_FIELDS,
    ],
}


def describe(name: str) -> Mapping[str, FieldInfo]:
    if name not in SCHEMA:
        raise FatalApiError(f"sObject type '{name}' is not supported", code="NOT_FOUND")
    return {f.name: f for f in SCHEMA[name]}


GOOD = """
entities:
  accounts:
    object: Account
    fields:
      name: Name
      customer_since: Since__c
      segment: {from: Tier__c, map: {Gold: Enterprise, Silver: Mid}}
    extra:
      arr: {from: ARR__c, type: number}
writeback:
  account:
    object: Account
    owned: true
    fields:
      status: Advocate_Status__c
      eligible: Advocate_Eligible__c
      score: Advocate_Score__c
      reason: Advocate_Reason__c
      next_available: Advocate_Next_Available__c
"""


def _report(write_mapping: Write, text: str) -> tuple[list[str], list[str]]:
    d = write_mapping(text)
    source = load_mappings(d).salesforce
    assert source is not None
    report = validate_online(source, describe)
    strip = str(d) + "/"
    return (
        [p.removeprefix(strip) for p in report.problems],
        [w.removeprefix(strip) for w in report.warnings],
    )


def test_a_matching_mapping_passes(write_mapping: Write) -> None:
    assert _report(write_mapping, GOOD) == ([], [])


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "arr: {from: ARR__c",
            "arr: {from: ARR_c",
            "salesforce.yaml:9:7: Account has no field 'ARR_c'; did you mean 'ARR__c'?",
        ),
        (
            "customer_since: Since__c",
            "customer_since: Name",
            "salesforce.yaml:6:7: Account.Name is a string field and cannot feed "
            "customer_since (date); map another field or translate its values with a 'map'",
        ),
        (
            "Silver: Mid",
            "Silvr: Mid",
            "salesforce.yaml:7:56: Account.Tier__c has no picklist value 'Silvr'; "
            "did you mean 'Silver'?",
        ),
        (
            "object: Account\n    fields:\n      name",
            "object: Acount\n    fields:\n      name",
            "salesforce.yaml:3:5: cannot describe object 'Acount' (sObject type 'Acount' is "
            "not supported); check the name and that the integration user can read it",
        ),
        (
            "score: Advocate_Score__c",
            "score: Notes__c",
            "salesforce.yaml:17:7: Account.Notes__c is a string field and cannot "
            "receive score; use a field of type currency, decimal, double, int, integer, long, "
            "number, percent",
        ),
        (
            "reason: Advocate_Reason__c",
            "reason: Name",
            "salesforce.yaml:18:7: Account.Name is not updateable by the integration user; "
            "grant edit access (permission set Advocate_Sync_Integration) or map another field",
        ),
        (
            "owned: true",
            "owned: true\n    override_field: Name",
            "salesforce.yaml:14:5: Account.Name is a string field; the override field must be a "
            "checkbox",
        ),
    ],
)
def test_schema_mismatches_are_reported_with_position(
    write_mapping: Write, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    problems, _ = _report(write_mapping, GOOD.replace(old, new))
    assert problems == [expected]


def test_restricted_status_picklist_must_hold_every_status(write_mapping: Write) -> None:
    saved = SCHEMA["Account"][8]
    SCHEMA["Account"][8] = _f(
        "Advocate_Status__c", "picklist", updateable=True, picklist_values=STATUSES[:3]
    )
    try:
        problems, _ = _report(write_mapping, GOOD)
    finally:
        SCHEMA["Account"][8] = saved
    assert problems == [
        "salesforce.yaml:15:7: Account.Advocate_Status__c lacks the picklist value(s) "
        "'Opted Out', 'Not Eligible'; add them to the picklist"
    ]


def test_formula_fields_are_a_warning(write_mapping: Write) -> None:
    problems, warnings = _report(
        write_mapping, GOOD.replace("arr: {from: ARR__c", "arr: {from: Health__c")
    )
    assert problems == []
    assert warnings == [
        "salesforce.yaml:9:7: Account.Health__c is a formula or roll-up field: its changes do "
        "not move the replication key, so it is refreshed only by the nightly reconciliation"
    ]


def test_field_names_match_case_insensitively(write_mapping: Write) -> None:
    assert _report(write_mapping, GOOD.replace("name: Name", "name: NAME")) == ([], [])


def test_shipped_mapping_matches_the_shipped_metadata_schema() -> None:
    """Each writeback field the default mapping names is in the deployable metadata."""
    from tests.mapping.sfmeta import metadata_describe

    repo = Path(__file__).resolve().parents[2]
    source = load_mappings(repo / "mappings").salesforce
    assert source is not None
    for target in source.writeback:
        fields = metadata_describe(target.object_name)
        for crm in target.crm_fields:
            assert crm in fields, f"{target.object_name}.{crm} missing from salesforce/force-app"
