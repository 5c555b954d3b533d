"""Describes kept on disk across runs: used instead of a call, renewed when stale."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from canonical.errors import MappingError
from connectors.base import StreamSpec
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce.describe import DescribeStore, store_key
from tests.connectors.salesforce.sf_fakes import CONTACT_FIELDS, describe_response, token_response

SPEC = StreamSpec(name="contacts", object_name="Contact", fields=("Email", "LastName"))


def connector(config: SalesforceConfig, var: Path, key: str = "m1") -> SalesforceConnector:
    kept = config.model_copy(update={"describe_cache_dir": var, "describe_cache_key": key})
    return SalesforceConnector(kept, sleep=lambda _s: None)


def test_a_second_run_uses_the_kept_describe_without_a_call(
    rsps: responses.RequestsMock, config: SalesforceConfig, tmp_path: Path
) -> None:
    token_response(rsps)
    describe_response(rsps)
    first = connector(config, tmp_path)
    assert first.check_fields(SPEC).field("Advocate_Status__c") is not None
    first.close()
    again = connector(config, tmp_path)  # a new run, a new connector: no call at all
    info = again.check_fields(SPEC)
    status = info.field("Advocate_Status__c")
    assert status is not None
    assert (status.picklist_values, status.restricted_picklist) == (("Eligible",), True)
    assert info.relationship("Account") is not None
    assert len(rsps.calls) == 2  # one login, one describe


def test_a_new_mapping_digest_or_api_version_describes_again(
    rsps: responses.RequestsMock, config: SalesforceConfig, tmp_path: Path
) -> None:
    token_response(rsps)
    describe_response(rsps)
    connector(config, tmp_path).describe("Contact")
    describe_response(rsps)
    connector(config, tmp_path, key="m2").describe("Contact")  # the admin edited the mapping
    newer = config.model_copy(update={"api_version": "63.0"})
    rsps.get(
        "https://acme.my.example.test/services/data/v63.0/sobjects/Contact/describe/",
        json={"name": "Contact", "fields": CONTACT_FIELDS},
    )
    connector(newer, tmp_path, key="m2").describe("Contact")


def test_a_kept_describe_is_trusted_for_a_day(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = DescribeStore(tmp_path, store_key("org", "62.0", "m1"), clock=lambda: now[0])
    store.save("Contact", {"name": "Contact", "fields": [{"name": "Id", "type": "id", "x": 1}]})
    assert store.load("Contact") == {"name": "Contact", "fields": [{"name": "Id", "type": "id"}]}
    now[0] += 86_399
    assert store.load("Contact") is not None
    now[0] += 1
    assert store.load("Contact") is None


def test_a_field_missing_from_the_kept_describe_is_checked_against_a_fresh_one(
    rsps: responses.RequestsMock, config: SalesforceConfig, tmp_path: Path
) -> None:
    token_response(rsps)
    describe_response(rsps)
    connector(config, tmp_path).describe("Contact")
    added = [*CONTACT_FIELDS, {"name": "Tier__c", "type": "string"}]
    describe_response(rsps, fields=added)  # the admin added the field since
    spec = StreamSpec(name="contacts", object_name="Contact", fields=("Tier__c",))
    assert connector(config, tmp_path).check_fields(spec).has("Tier__c")
    describe_response(rsps)  # and a field that truly is not there is still reported
    gone = StreamSpec(name="contacts", object_name="Contact", fields=("Nope__c",))
    kept = connector(config, tmp_path)
    with pytest.raises(MappingError, match="Nope__c"):
        kept.check_fields(gone)
