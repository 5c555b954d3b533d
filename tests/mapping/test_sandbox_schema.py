"""The shipped mappings match the sandbox's schema (the demo and end-to-end tests use both)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from connectors.salesforce.describe import FieldInfo
from sync_service.mapping import load_mappings
from sync_service.mapping.online import validate_online

schema: Any = pytest.importorskip("sandbox.schema")

REPO = Path(__file__).resolve().parents[2]


def _describe(objects: Mapping[str, Any]) -> Any:
    def describe(name: str) -> dict[str, FieldInfo]:
        if name not in objects:
            raise KeyError(name)
        return {
            f.name: FieldInfo.from_describe(f.describe()) for f in objects[name].fields.values()
        }

    return describe


def test_default_salesforce_mapping_matches_the_sandbox_org() -> None:
    source = load_mappings(REPO / "mappings").salesforce
    assert source is not None
    report = validate_online(source, _describe(schema.salesforce_objects()))
    assert report.problems == []


def test_default_gainsight_mapping_matches_the_sandbox_tenant() -> None:
    source = load_mappings(REPO / "mappings").gainsight
    assert source is not None
    report = validate_online(source, _describe(schema.gainsight_objects()))
    assert report.problems == []
