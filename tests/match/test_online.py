"""validate --online for the matching rules: each term's account field exists in the org."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sync_service.mapping import load_mappings
from sync_service.match.config import parse_matching
from sync_service.match.job import account_extras
from sync_service.match.online import check_online

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = load_mappings(ROOT / "mappings")
SOURCE = MAPPINGS.salesforce
assert SOURCE is not None


def _describe(*fields: str) -> Any:
    def describe(name: str) -> Mapping[str, Any]:
        assert name == "Account"
        return dict.fromkeys(fields)

    return describe


def test_the_shipped_rules_read_fields_the_org_has() -> None:
    text = (ROOT / "config" / "matching.yaml").read_text(encoding="utf-8")
    rules = parse_matching(text, account_extras(MAPPINGS), "config/matching.yaml")
    org = _describe("Id", "Name", "Industry", "Region__c", "Segment__c", "NumberOfEmployees")
    assert check_online(rules, SOURCE, org) == []  # type: ignore[arg-type]


def test_a_field_the_org_lacks_is_named_with_the_terms_line() -> None:
    text = "terms:\n  industry: 3\n  region: 2\n"
    rules = parse_matching(text, account_extras(MAPPINGS), "m.yaml")
    problems = check_online(rules, SOURCE, _describe("Id", "industry"))  # type: ignore[arg-type]
    assert problems == [
        "m.yaml:3:3: 'region' reads Account.Region__c, which the org does not have (or the "
        "integration user cannot see)"
    ]


def test_a_term_reads_the_crm_field_its_mapping_names() -> None:
    rules = parse_matching("terms: {account_type: 1}\n", {}, "m.yaml")
    assert check_online(rules, SOURCE, _describe("Type")) == []  # type: ignore[arg-type]
    problems = check_online(rules, SOURCE, _describe("Name"))  # type: ignore[arg-type]
    assert problems == [
        "m.yaml:1:9: 'account_type' reads Account.Type, which the org does not have (or the "
        "integration user cannot see)"
    ]
