"""Bulk CSV rows: typed like REST JSON; the generated builder (speed path) equals its plain twin."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canonical.speed_paths import SPEED_PATHS_OFF
from connectors.salesforce import csv_rows
from connectors.salesforce.csv_rows import parse_csv_page
from connectors.salesforce.describe import FieldInfo, ObjectInfo

# every test of a page runs on both paths: the generated builder and the plain reference loop
BOTH = pytest.mark.parametrize("generated", [True, False], ids=["generated", "plain"])


@pytest.mark.parametrize(
    ("sf_type", "cell", "value"),
    [
        ("boolean", "true", True),
        ("boolean", "false", False),
        ("boolean", "", None),
        ("int", "42", 42),
        ("int", "42.0", 42),
        ("double", "1.5", 1.5),
        ("currency", "1000", 1000.0),
        ("percent", "", None),
        ("string", "", None),
        ("string", "0042", "0042"),
        ("date", "2026-11-23", "2026-11-23"),
        ("datetime", "2026-11-23T10:00:00.000Z", "2026-11-23T10:00:00.000Z"),
    ],
)
@BOTH
def test_csv_cells_are_typed_like_rest_json(
    sf_type: str, cell: str, value: Any, generated: bool
) -> None:
    info = ObjectInfo("X", {"F": FieldInfo(name="F", type=sf_type)})
    [record] = list(parse_csv_page(f"F,Other\n{cell},x\n", info, generated=generated))
    assert record == {"F": value, "Other": "x"}
    assert type(record["F"]) is type(value)


@BOTH
def test_csv_quoting_and_unknown_columns_survive_parsing(generated: bool) -> None:
    info = ObjectInfo("X", {"F": FieldInfo(name="F", type="string")})
    text = 'F,Account.Name\n"multi\nline, ""quoted""",Acme\n'
    assert list(parse_csv_page(text, info, generated=generated)) == [
        {"F": 'multi\nline, "quoted"', "Account.Name": "Acme"}
    ]


@BOTH
def test_rows_of_another_width_are_read_by_position(generated: bool) -> None:
    info = ObjectInfo("X", {"B": FieldInfo(name="B", type="boolean")})
    text = "A,B,C\nx,true,\nshort,false\nlong,true,c,extra\n"
    assert list(parse_csv_page(text, info, generated=generated)) == [
        {"A": "x", "B": True, "C": None},
        {"A": "short", "B": False},
        {"A": "long", "B": True, "C": "c"},
    ]


@BOTH
def test_column_names_never_become_code(generated: bool) -> None:
    # Header names come from the server; the generated row builder must treat them as data.
    hostile = "x'): __import__('os').remove('nothing'); ('"
    info = ObjectInfo("X", {})
    text = f'"{hostile}",A,A\n1,2,3\n'
    # A name given twice keeps its last cell, as a dict built from the pairs does.
    assert list(parse_csv_page(text, info, generated=generated)) == [{hostile: "1", "A": "3"}]


def _outcome(text: str, info: ObjectInfo, *, generated: bool) -> tuple[list[Any], str | None]:
    """The records a page gives, then the error that stopped it (if any)."""
    records: list[Any] = []
    try:
        for record in parse_csv_page(text, info, generated=generated):
            records.append((record, [type(v) for v in record.values()]))
    except ValueError as exc:
        return records, f"{type(exc).__name__}: {exc}"
    return records, None


_TYPES = ["string", "boolean", "int", "double", "currency", "date", "id"]
_CELLS = ["", "true", "false", "0", "42", "42.0", "1.5", "-7", "x", "a,b", 'say "hi"', "l1\nl2"]


@settings(max_examples=200, deadline=None)
@given(
    columns=st.lists(
        st.tuples(st.sampled_from(["A", "B", "Account.Name", "x,y", "A"]), st.sampled_from(_TYPES)),
        min_size=1,
        max_size=6,
    ),
    rows=st.lists(st.lists(st.sampled_from(_CELLS), min_size=1, max_size=8), max_size=12),
)
def test_the_generated_builder_gives_what_the_plain_loop_gives(
    columns: list[tuple[str, str]], rows: list[list[str]]
) -> None:
    header = [name for name, _ in columns]
    info = ObjectInfo("X", {name: FieldInfo(name=name, type=t) for name, t in columns})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    assert _outcome(text, info, generated=True) == _outcome(text, info, generated=False)


def test_the_switch_takes_the_plain_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[list[str]] = []
    real = csv_rows._record_builder

    def spy(header: list[str], converters: Any) -> Any:
        built.append(header)
        return real(header, converters)

    monkeypatch.setattr(csv_rows, "_record_builder", spy)
    info = ObjectInfo("X", {"B": FieldInfo(name="B", type="boolean")})
    monkeypatch.setenv(SPEED_PATHS_OFF, "bulk_csv_rows")
    assert list(parse_csv_page("A,B\nx,true\n", info)) == [{"A": "x", "B": True}]
    assert built == []
    monkeypatch.delenv(SPEED_PATHS_OFF)
    assert list(parse_csv_page("A,B\nx,true\n", info)) == [{"A": "x", "B": True}]
    assert built == [["A", "B"]]
