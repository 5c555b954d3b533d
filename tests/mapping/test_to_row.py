"""to_row: typed conversion, value maps, defaults, required fields, deletes, _crm read-back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from canonical.errors import RecordError
from canonical.model import CANONICAL_FIELDS, Entity
from connectors.base import DELETED_KEY, MERGED_INTO_KEY
from sync_service.mapping import EntityMapping, load_mappings
from sync_service.mapping.convert import MAX_STRING

MAPPING = """
entities:
  accounts:
    object: Account
    fields:
      name: {from: Name, required: true}
      health_score: Health__c
      customer_since: Since__c
      payment_overdue: {from: Overdue__c, default: false}
      segment: {from: Segment__c, map: {ENT: Enterprise, SMB: Small business}}
      region: {from: Region__c, map: {EMEA: emea, AMER: amer}, strict: true}
      nps_score: {from: Nps__c}
    extra:
      employees: {from: NumberOfEmployees, type: integer}
      renewal_on: {from: Renewal__c, type: date}
      last_touch: {from: Touch__c, type: datetime}
  contacts:
    object: Contact
    fields:
      email: {from: Email, required: true, transform: [strip, lower]}
      opted_in: Reference_Opt_In__c
      account_id: AccountId
  nps_responses:
    object: Survey__c
    fields:
      score: Score__c
      responded_at: When__c
writeback:
  contact:
    object: Contact
    override_field: Hands_Off__c
    fields: {status: Adv_Status__c, score: Adv_Score__c}
"""


@pytest.fixture
def mappings(write_mapping: Callable[..., Path]) -> dict[Entity, EntityMapping]:
    source = load_mappings(write_mapping(MAPPING)).salesforce
    assert source is not None
    return source.entities


def _acc(mappings: dict[Entity, EntityMapping], **fields: Any) -> dict[str, Any]:
    return mappings[Entity.ACCOUNT].to_row({"Id": "001A", "Name": "Acme", **fields})


@pytest.mark.parametrize(
    ("crm_field", "raw", "column", "expected"),
    [
        # number
        ("Health__c", 71.5, "health_score", 71.5),
        ("Health__c", 80, "health_score", 80.0),
        ("Health__c", "64.25", "health_score", 64.25),
        ("Health__c", "", "health_score", None),
        ("Health__c", None, "health_score", None),
        # date
        ("Since__c", "2021-03-04", "customer_since", date(2021, 3, 4)),
        ("Since__c", "2021-03-04T23:30:00.000-0200", "customer_since", date(2021, 3, 5)),
        # boolean, default
        ("Overdue__c", True, "payment_overdue", True),
        ("Overdue__c", "false", "payment_overdue", False),
        ("Overdue__c", "TRUE", "payment_overdue", True),
        ("Overdue__c", 1, "payment_overdue", True),
        ("Overdue__c", None, "payment_overdue", False),
        ("Overdue__c", "", "payment_overdue", False),
        # value map (lenient: unknown values pass through)
        ("Segment__c", "ENT", "segment", "Enterprise"),
        ("Segment__c", "Mid-market", "segment", "Mid-market"),
        # strict value map
        ("Region__c", "EMEA", "region", "emea"),
        # string from a number
        ("Name", 42, "name", "42"),
        ("Name", "x" * 300, "name", "x" * MAX_STRING),
        # number stored as float in the store
        ("Nps__c", "9", "nps_score", 9.0),
    ],
)
def test_account_values_are_converted(
    mappings: dict[Entity, EntityMapping], crm_field: str, raw: Any, column: str, expected: Any
) -> None:
    row = _acc(mappings, **{crm_field: raw})
    assert row[column] == expected
    assert type(row[column]) is type(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-31T12:00:00.000+0000", datetime(2024, 1, 31, 12, tzinfo=UTC)),
        ("2024-01-31T12:00:00Z", datetime(2024, 1, 31, 12, tzinfo=UTC)),
        ("2024-01-31T14:00:00+02:00", datetime(2024, 1, 31, 12, tzinfo=UTC)),
        ("2024-01-31 12:00:00", datetime(2024, 1, 31, 12, tzinfo=UTC)),  # naive: UTC
        (1706702400000, datetime(2024, 1, 31, 12, tzinfo=UTC)),  # epoch ms (Gainsight)
        (1706702400, datetime(2024, 1, 31, 12, tzinfo=UTC)),  # epoch seconds
        (
            datetime(2024, 1, 31, 13, tzinfo=timezone(timedelta(hours=1))),
            datetime(2024, 1, 31, 12, tzinfo=UTC),
        ),
    ],
)
def test_datetimes_become_aware_utc(
    mappings: dict[Entity, EntityMapping], raw: Any, expected: datetime
) -> None:
    row = mappings[Entity.NPS_RESPONSE].to_row({"Id": "a0X1", "When__c": raw, "Score__c": 9})
    assert row["responded_at"] == expected
    assert row["responded_at"].utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("raw", "expected"), [(9, 9), ("10", 10), (7.0, 7), ("8.0", 8), (None, None)]
)
def test_integers_accept_whole_values_only(
    mappings: dict[Entity, EntityMapping], raw: Any, expected: int | None
) -> None:
    row = mappings[Entity.NPS_RESPONSE].to_row({"Id": "a0X1", "Score__c": raw})
    assert row["score"] == expected


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"Id": None}, "Account.Id: the record has no id; it is skipped"),
        ({"Id": ""}, "Account.Id: the record has no id; it is skipped"),
        (
            {"Name": ""},
            "Account.Name: required (feeds name) but empty; fill it in the CRM or give a default",
        ),
        (
            {"Since__c": "2021-02-30"},
            "Account.Since__c: '2021-02-30' is not a valid date for customer_since "
            "(day is out of range for month)",
        ),
        (
            {"Region__c": "APAC"},
            "Account.Region__c: 'APAC' is not in the value map of region; add it to the map",
        ),
        (
            {"Health__c": "high"},
            "Account.Health__c: 'high' is not a valid number for health_score "
            "(could not convert string to float: 'high')",
        ),
        (
            {"Overdue__c": "maybe"},
            "Account.Overdue__c: 'maybe' is not a valid boolean for payment_overdue "
            "(is not a yes/no value)",
        ),
        (
            {"NumberOfEmployees": 12.5},
            "Account.NumberOfEmployees: 12.5 is not a valid integer for employees "
            "(is not a whole number)",
        ),
        (
            {"Touch__c": "yesterday"},
            "Account.Touch__c: 'yesterday' is not a valid datetime for last_touch "
            "(Invalid isoformat string: 'yesterday')",
        ),
        (
            {"SystemModstamp": "soon"},
            "Account.SystemModstamp: 'soon' is not a valid datetime for source_updated_at "
            "(Invalid isoformat string: 'soon')",
        ),
    ],
)
def test_bad_records_raise_record_error_naming_the_field(
    mappings: dict[Entity, EntityMapping], fields: dict[str, Any], reason: str
) -> None:
    with pytest.raises(RecordError) as info:
        _acc(mappings, **fields)
    assert info.value.reason == reason
    assert "\n" not in info.value.reason


def test_record_error_carries_the_record_id(mappings: dict[Entity, EntityMapping]) -> None:
    with pytest.raises(RecordError) as info:
        _acc(mappings, Region__c="APAC")
    assert info.value.record_id == "001A"


@pytest.mark.parametrize(
    "raw",
    [
        {"Email": ["someone@example.com"]},
        {"AccountId": {"x": "someone@example.com"}},
        {"Reference_Opt_In__c": "someone@example.com"},
    ],
)
def test_reasons_never_carry_an_email(
    mappings: dict[Entity, EntityMapping], raw: dict[str, Any]
) -> None:
    record = {"Id": "003A", "Email": "ok@example.com", **raw}
    with pytest.raises(RecordError) as info:
        mappings[Entity.CONTACT].to_row(record)
    assert "@" not in info.value.reason
    assert "example.com" not in info.value.reason


def test_missing_required_email_names_the_field_only(
    mappings: dict[Entity, EntityMapping],
) -> None:
    with pytest.raises(RecordError) as info:
        mappings[Entity.CONTACT].to_row({"Id": "003A", "Email": None})
    assert info.value.reason == (
        "Contact.Email: required (feeds email) but empty; fill it in the CRM or give a default"
    )


def test_text_that_transforms_to_nothing_is_null(mappings: dict[Entity, EntityMapping]) -> None:
    assert mappings[Entity.CONTACT].to_row({"Id": "003A", "Email": "   "})["email"] is None


def test_row_has_every_canonical_column_and_the_bookkeeping_ones(
    mappings: dict[Entity, EntityMapping],
) -> None:
    row = _acc(mappings, SystemModstamp="2024-05-01T10:00:00.000+0000", NumberOfEmployees="250")
    expected = {"id", *CANONICAL_FIELDS[Entity.ACCOUNT], "source_updated_at", "deleted"}
    assert expected | {"merged_into", "extra"} == set(row)
    assert row["id"] == "001A"
    assert row["source_updated_at"] == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert row["deleted"] is False
    assert row["merged_into"] is None
    assert row["industry"] is None  # unmapped canonical column
    assert row["extra"] == {"employees": 250, "renewal_on": None, "last_touch": None}


def test_extra_dates_are_stored_as_iso_text(mappings: dict[Entity, EntityMapping]) -> None:
    row = _acc(mappings, Renewal__c="2025-01-01", Touch__c="2024-02-03T04:05:06Z")
    assert row["extra"]["renewal_on"] == "2025-01-01"
    assert row["extra"]["last_touch"] == "2024-02-03T04:05:06+00:00"


def test_transform_normalises_email(mappings: dict[Entity, EntityMapping]) -> None:
    row = mappings[Entity.CONTACT].to_row({"Id": "003A", "Email": "  Ann@Example.COM "})
    assert row["email"] == "ann@example.com"


def test_writeback_fields_and_override_are_read_back_into_crm_extra(
    mappings: dict[Entity, EntityMapping],
) -> None:
    contacts = mappings[Entity.CONTACT]
    spec = contacts.stream_spec()
    assert spec.fields[-3:] == ("Adv_Status__c", "Adv_Score__c", "Hands_Off__c")
    row = contacts.to_row(
        {"Id": "003A", "Email": "a@b.co", "Adv_Status__c": "Eligible", "Hands_Off__c": True}
    )
    assert row["extra"]["_crm"] == {
        "Adv_Status__c": "Eligible",
        "Adv_Score__c": None,
        "Hands_Off__c": True,
    }
    # other objects do not carry the contact's writeback fields
    assert "_crm" not in _acc(mappings)["extra"]


def test_deleted_record_keeps_only_what_it_carries(mappings: dict[Entity, EntityMapping]) -> None:
    row = mappings[Entity.CONTACT].to_row(
        {"Id": "003A", DELETED_KEY: True, MERGED_INTO_KEY: "003B"}
    )
    assert row == {"id": "003A", "deleted": True, "merged_into": "003B"}


def test_deleted_record_is_never_quarantined_for_its_values(
    mappings: dict[Entity, EntityMapping],
) -> None:
    row = _acc(mappings, **{DELETED_KEY: True, "Name": "", "Since__c": "garbage", "Health__c": 5})
    assert row["deleted"] is True
    assert row["health_score"] == 5.0
    assert "customer_since" not in row
    assert "name" not in row


def test_stream_spec_reads_keys_mapped_and_extra_fields(
    mappings: dict[Entity, EntityMapping],
) -> None:
    spec = mappings[Entity.ACCOUNT].stream_spec()
    assert spec.name == "accounts"
    assert spec.object_name == "Account"
    assert spec.primary_key == "Id"
    assert spec.replication_key == "SystemModstamp"
    assert spec.fields[:3] == ("Id", "SystemModstamp", "Name")
    assert "NumberOfEmployees" in spec.fields
    assert len(spec.fields) == len(set(spec.fields))


def test_record_marked_malformed_by_the_connector_is_quarantined(
    mappings: dict[Entity, EntityMapping],
) -> None:
    from connectors.base import INVALID_KEY

    with pytest.raises(RecordError) as info:
        _acc(mappings, **{INVALID_KEY: "no modified date"})
    assert info.value.reason == "Account: malformed record from the connector (no modified date)"
    assert info.value.record_id == "001A"
