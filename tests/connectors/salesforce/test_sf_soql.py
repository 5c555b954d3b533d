"""SOQL building: the compound cursor, the until cap, filters, identifier and value safety."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from canonical.errors import MappingError
from connectors.base import Cursor, FieldFilter, StreamSpec
from connectors.salesforce import soql

TS = datetime(2026, 11, 1, 12, 30, 5, 123456, tzinfo=UTC)
UNTIL = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
SPEC = StreamSpec(name="contacts", object_name="Contact", fields=("Email", "AccountId"))


def test_records_equal_to_watermark_are_not_lost() -> None:
    query = soql.read_query(SPEC, ["Id", "SystemModstamp", "Email"], Cursor(TS, "003A"), UNTIL)
    # Same timestamp, later Id: still read. format_soql drops the microseconds, rounding the
    # lower bound down, which can only re-read rows (harmless with upserts), never skip one.
    assert (
        "WHERE (SystemModstamp > 2026-11-01T12:30:05+00:00 OR "
        "(SystemModstamp = 2026-11-01T12:30:05+00:00 AND Id > '003A'))" in query
    )
    assert query.endswith("ORDER BY SystemModstamp, Id")


def test_cursor_without_id_includes_every_row_at_its_timestamp() -> None:
    assert soql.cursor_condition("SystemModstamp", "Id", Cursor(TS)) == (
        "SystemModstamp >= 2026-11-01T12:30:05+00:00"
    )


def test_reads_are_capped_at_until() -> None:
    query = soql.read_query(SPEC, ["Id"], None, UNTIL)
    assert "WHERE SystemModstamp <= 2026-11-23T19:00:00+00:00" in query


def test_non_utc_aware_datetimes_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    query = soql.read_query(SPEC, ["Id"], None, datetime(2026, 11, 23, 20, 0, tzinfo=paris))
    assert "SystemModstamp <= 2026-11-23T19:00:00+00:00" in query


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        soql.read_query(SPEC, ["Id"], None, datetime(2026, 11, 23))  # noqa: DTZ001


def test_bulk_queries_are_unordered() -> None:
    assert "ORDER BY" not in soql.read_query(SPEC, ["Id"], None, UNTIL, ordered=False)


def test_full_read_without_replication_key_orders_by_id_only() -> None:
    spec = StreamSpec(name="x", object_name="Thing__c", fields=("Name",), replication_key=None)
    assert (
        soql.read_query(spec, ["Id", "Name"], None, UNTIL)
        == "SELECT Id, Name FROM Thing__c ORDER BY Id"
    )


def test_count_query_matches_the_read_conditions() -> None:
    query = soql.count_query(SPEC, Cursor(TS, "003A"), UNTIL)
    assert query.startswith("SELECT COUNT() FROM Contact WHERE (SystemModstamp > ")
    assert "ORDER BY" not in query


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (FieldFilter("Status__c", "=", ("Active",)), "Status__c = 'Active'"),
        (FieldFilter("IsActive__c", "!=", (True,)), "IsActive__c != true"),
        (FieldFilter("Amount", ">=", (1000.5,)), "Amount >= 1000.5"),
        (FieldFilter("CloseDate", "<", (date(2026, 1, 1),)), "CloseDate < 2026-01-01"),
        (FieldFilter("Email", "=", (None,)), "Email = null"),
        (FieldFilter("Type", "IN", ("Customer", "Partner")), "Type IN ('Customer','Partner')"),
        (FieldFilter("Type", "NOT IN", ("Prospect",)), "Type NOT IN ('Prospect')"),
        (FieldFilter("Name", "LIKE", ("Acme%",)), "Name LIKE 'Acme%'"),
        (FieldFilter("Account.Industry", "=", ("Health",)), "Account.Industry = 'Health'"),
    ],
)
def test_structured_filters_become_soql(flt: FieldFilter, expected: str) -> None:
    assert soql.filter_clause(flt) == expected


def test_filter_values_are_quoted_so_injection_stays_a_literal() -> None:
    clause = soql.filter_clause(FieldFilter("Name", "=", ("x' OR Name != '",)))
    assert clause == "Name = 'x\\' OR Name != \\''"


@pytest.mark.parametrize(
    "name", ["Name; DELETE", "Name)", "Name OR Id", "", "1abc", "Na me", "Name'--", "a.b.c.d.e.f.g"]
)
def test_invalid_field_names_are_rejected(name: str) -> None:
    with pytest.raises(MappingError, match="not a valid Salesforce field API name"):
        soql.field_name(name)


@pytest.mark.parametrize("name", ["Contact WHERE Id != null", "Account.Name", "Bad__", ""])
def test_invalid_object_names_are_rejected(name: str) -> None:
    with pytest.raises(MappingError, match="object API name"):
        soql.object_name(name)


def test_filters_refuse_unknown_operators_and_wrong_arity() -> None:
    with pytest.raises(MappingError, match="operator"):
        soql.filter_clause(FieldFilter("Name", "; DROP", ("x",)))  # type: ignore[arg-type]
    with pytest.raises(MappingError, match="exactly one value"):
        soql.filter_clause(FieldFilter("Name", "=", ("a", "b")))
    with pytest.raises(MappingError, match="at least one value"):
        soql.filter_clause(FieldFilter("Name", "IN", ()))


def test_ids_query_reads_live_rows_with_filters() -> None:
    spec = StreamSpec(
        name="contacts",
        object_name="Contact",
        fields=(),
        filters=(FieldFilter("Type__c", "=", ("Advocate",)),),
    )
    assert soql.ids_query(spec) == "SELECT Id FROM Contact WHERE Type__c = 'Advocate' ORDER BY Id"


def test_until_is_rounded_up_so_edits_in_the_starting_second_are_read() -> None:
    until = datetime(2026, 11, 23, 19, 0, 5, 800000, tzinfo=UTC)
    assert "SystemModstamp <= 2026-11-23T19:00:06+00:00" in soql.read_query(
        SPEC, ["Id"], None, until
    )
