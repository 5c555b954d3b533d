"""Speed path: Bulk API 2.0 CSV rows built by one generated dict display per page.

A Bulk 2.0 result page is CSV: a header of field API names, then one line per record. Each row
becomes the dict REST JSON would give: empty cells are null (Salesforce stores no empty
strings), booleans and numbers are typed from describe, everything else (dates, datetimes, ids,
text) stays text in the format REST returns.

What it speeds up: the hot loop of a bulk read. A page's columns are known once its header is
read, so instead of a per-cell loop (empty to None, then each typed column) each full-width row
becomes its dict in one generated expression (:func:`_record_builder`). By how much
(``BENCHMARKS.md``, Salesforce sync, item 2): 3.3 -> 2.5 us a contact row.

Switch: ``SYNC_SPEED_PATHS_OFF=bulk_csv_rows`` (see :mod:`canonical.speed_paths`), or
``parse_csv_page(..., generated=False)``. Reference twin: :func:`_plain_records`, the
``csv.DictReader``-style loop pairing each cell with its column name (also what reads a row of
another width); ``tests/connectors/salesforce/test_sf_csv_rows.py`` proves both give the same
records for any page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

from canonical.speed_paths import speed_path_on
from connectors.salesforce.describe import (
    BOOLEAN_TYPES,
    FLOAT_TYPES,
    INTEGER_TYPES,
    FieldInfo,
    ObjectInfo,
)

Converter = Callable[[str], Any]


def _to_number(value: str) -> int | float:
    try:
        return int(value)
    except ValueError:
        number = float(value)
        return int(number) if number.is_integer() else number


def _is_true(cell: str) -> bool:
    return cell == "true"


def typed_converter(info: FieldInfo | None) -> Converter | None:
    """How to turn a non-empty CSV cell into the value REST JSON gives; None: keep the text."""
    if info is None:
        return None
    if info.type in BOOLEAN_TYPES:
        return _is_true
    if info.type in INTEGER_TYPES:
        return _to_number
    if info.type in FLOAT_TYPES:
        return float
    return None


def parse_csv_page(
    text: str, info: ObjectInfo, *, generated: bool | None = None
) -> Iterator[dict[str, Any]]:
    """Records of one Bulk API 2.0 result page, typed like REST JSON.

    Empty cells are null (Salesforce stores no empty strings); booleans and numbers are
    converted by their describe type; everything else (dates, datetimes, ids, text) stays text
    in the same format REST returns. This is the hot loop of a bulk read: each row becomes its
    dict in one generated expression (see :func:`_record_builder`).

    Args:
        text: the page as the API returned it, header line first.
        info: the object's describe (field types).
        generated: build rows with the generated expression (the speed path); False: the
            plain reference loop; None: unless ``SYNC_SPEED_PATHS_OFF`` names ``bulk_csv_rows``.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return
    converters = [typed_converter(info.field(column)) for column in header]
    if generated is None:
        generated = speed_path_on("bulk_csv_rows")
    if not generated:
        yield from _plain_records(header, converters, reader)
        return
    build = _record_builder(header, converters)
    width = len(header)
    for row in reader:
        if len(row) == width:
            yield build(row)
        else:  # a short or long row: whatever cells it has, by position
            yield _record_of(header, converters, row)


def _cell(convert: Converter | None, cell: str) -> Any:
    if not cell:
        return None
    return convert(cell) if convert is not None else cell


def _record_of(
    header: list[str], converters: list[Converter | None], row: list[str]
) -> dict[str, Any]:
    # a row shorter or longer than the header keeps the cells it has, by position
    return {
        column: _cell(convert, cell)
        for column, convert, cell in zip(header, converters, row, strict=False)
    }


def _plain_records(
    header: list[str], converters: list[Converter | None], rows: Iterator[list[str]]
) -> Iterator[dict[str, Any]]:
    """The reference twin of the generated builder: each cell paired with its column, in turn."""
    for row in rows:
        yield _record_of(header, converters, row)


def _record_builder(
    header: list[str], converters: list[Converter | None]
) -> Callable[[list[str]], dict[str, Any]]:
    """A function building the record of a full-width row as one dict display.

    A page's columns are known once its header is read, so the per-cell loop of a generic
    parser (empty to None, then each typed column) becomes one expression per column. The
    column names come from the server: they reach the code only through the namespace
    (``K0``, ``K1``...), never as text of the generated source.
    """
    ns: dict[str, Any] = {}
    items: list[str] = []
    for i, convert in enumerate(converters):
        ns[f"K{i}"] = header[i]
        if convert is None:
            value = f"r[{i}] or None"
        elif convert is _is_true:  # inline: the commonest typed cell
            value = f"(r[{i}] == 'true') if r[{i}] else None"
        else:
            ns[f"C{i}"] = convert
            value = f"C{i}(r[{i}]) if r[{i}] else None"
        items.append(f"K{i}: {value}")
    source = "def build(r):\n    return {" + ", ".join(items) + "}\n"
    exec(compile(source, "<bulk csv record>", "exec"), ns)  # noqa: S102 - indexes and names only
    build: Callable[[list[str]], dict[str, Any]] = ns["build"]
    return build
