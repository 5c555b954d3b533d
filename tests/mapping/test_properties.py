"""Property tests: the validator never crashes on any input, and the compiled to_row agrees
with the field-by-field reference implementation on any record."""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from canonical.errors import MappingError, RecordError
from canonical.model import Entity
from canonical.yaml import plain
from connectors.base import DELETED_KEY
from sync_service.mapping import EntityMapping, load_mappings

DEFAULTS = Path(__file__).resolve().parents[2] / "mappings"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "Id",
            "Contact",
            "contacts",
            "email",
            "string",
            "boolean",
            "IN",
            "=",
            "Advocate_Status__c",
            "status",
            "from",
            "type",
            "2024-01-31",
        ]
    ),
    st.dates(),
)
structures = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.integers(), st.booleans()), children, max_size=4
        ),
    ),
    max_leaves=12,
)


def _dump(data: Any) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, out)
    return out.getvalue()


def _load_text(text: str, name: str = "salesforce.yaml") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / name).write_text(text, encoding="utf-8")
        problems: list[str] = []
        try:
            load_mappings(d)
        except MappingError as exc:  # the only exception allowed
            problems = exc.problems or ["<empty>"]
        assert all(isinstance(p, str) and p and "\n" not in p for p in problems)


def _default_data() -> Any:
    return plain(YAML(typ="rt").load((DEFAULTS / "salesforce.yaml").read_text()))


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


DEFAULT_PATHS = _paths(_default_data())


# ruamel's round-trip loader (which keeps positions) takes ~10 ms a file: keep counts modest.
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text_never_crashes_the_validator(text: str) -> None:
    _load_text(text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structures)
def test_random_structures_never_crash_the_validator(data: Any) -> None:
    _load_text(_dump(data))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DEFAULT_PATHS), structures, st.booleans())
def test_mutated_default_mapping_never_crashes_the_validator(
    path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    data = _default_data()
    if not path:
        data = value
    else:
        node = data
        for key in path[:-1]:
            node = node[key]
        if delete and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = value
    _load_text(_dump(data))


# -- the compiled to_row agrees with the reference implementation ----------------------------

MAPPING = """
entities:
  accounts:
    object: Account
    fields:
      name: {from: Name, required: true}
      health_score: Health__c
      customer_since: Since__c
      payment_overdue: {from: Overdue__c, default: false}
      segment: {from: Segment__c, map: {ENT: Enterprise, 1: One}}
      region: {from: Region__c, map: {EMEA: emea}, strict: true}
      industry: {from: Industry, transform: [strip, upper]}
      nps_score: Nps__c
    extra:
      employees: {from: Employees__c, type: integer}
      renewal_on: {from: Renewal__c, type: date}
      flag: {from: Flag__c, type: boolean, default: true}
  nps_responses:
    object: Survey__c
    replication_key: null
    fields:
      score: {from: Score__c, required: true}
      responded_at: When__c
writeback:
  account:
    object: Account
    fields: {status: Adv__c}
"""

values = st.one_of(
    scalars,
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "+0000"),
    st.datetimes(),
    st.sampled_from(["EMEA", "ENT", "1", " true ", "FALSE", "  ", "12.0", "1e3", "x" * 300]),
    st.lists(st.integers(), max_size=2),
)


@pytest.fixture(scope="module")
def entities(tmp_path_factory: pytest.TempPathFactory) -> dict[Entity, EntityMapping]:
    d = tmp_path_factory.mktemp("m")
    (d / "salesforce.yaml").write_text(MAPPING, encoding="utf-8")
    source = load_mappings(d).salesforce
    assert source is not None
    return source.entities


def _outcome(fn: Any, raw: dict[str, Any]) -> Any:
    try:
        return ("row", fn(raw))
    except RecordError as exc:
        return ("error", exc.reason, exc.record_id)


ACCOUNT_FIELDS = [
    "Id",
    "SystemModstamp",
    "Name",
    "Health__c",
    "Since__c",
    "Overdue__c",
    "Segment__c",
    "Region__c",
    "Industry",
    "Nps__c",
    "Employees__c",
    "Renewal__c",
    "Flag__c",
    "Adv__c",
    DELETED_KEY,
    "_invalid",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {"Id": st.one_of(st.just("001A"), values)},
        optional={name: values for name in ACCOUNT_FIELDS[1:]},
    ),
    st.sampled_from([Entity.ACCOUNT, Entity.NPS_RESPONSE]),
)
@example({"Id": "001A", "Name": "n" * 300, "Industry": "i" * 300}, Entity.ACCOUNT)
@example({"Id": "001A", "Name": "n", "Industry": "ﬃ" * 90}, Entity.ACCOUNT)
@example({"Id": "001A", "Name": "n", "Region__c": "APAC"}, Entity.ACCOUNT)
@example({"Id": "001A", "Name": "n", "SystemModstamp": " 2024-01-01 "}, Entity.ACCOUNT)
def test_compiled_to_row_matches_the_reference(
    entities: dict[Entity, EntityMapping], raw: dict[str, Any], entity: Entity
) -> None:
    if entity is Entity.NPS_RESPONSE:
        raw = {"Id": raw["Id"], "Score__c": raw.get("Nps__c"), "When__c": raw.get("Since__c")}
    em = entities[entity]
    assert _outcome(em.to_row, raw) == _outcome(em.to_row_checked, raw)


def test_fast_path_rows_are_typed(entities: dict[Entity, EntityMapping]) -> None:
    row = entities[Entity.ACCOUNT].to_row(
        {
            "Id": "001A",
            "Name": "Acme",
            "Since__c": "2020-01-02",
            "SystemModstamp": "2024-01-31T12:00:00.000+0000",
            "Industry": " tech ",
        }
    )
    assert row["customer_since"] == date(2020, 1, 2)
    assert row["source_updated_at"] == datetime(2024, 1, 31, 12, tzinfo=UTC)
    assert row["industry"] == "TECH"
    assert row["payment_overdue"] is False
    assert row["extra"] == {
        "employees": None,
        "renewal_on": None,
        "flag": True,
        "_crm": {"Adv__c": None, "Advocate_Override__c": None},
    }
