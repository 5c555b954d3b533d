"""One normal form per result, so a difference in shape is never taken for a change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from sync_service.writeback.values import (
    REASON_MAX_LENGTH,
    normalise,
    same,
    same_as_written,
    truthy,
)


@pytest.mark.parametrize(
    ("result", "raw", "normal"),
    [
        ("status", "  Eligible ", "Eligible"),
        ("status", "", None),
        ("eligible", "true", True),
        ("eligible", "false", False),
        ("eligible", 0, False),
        ("eligible", "", None),
        ("score", "57.0", 57.0),
        ("score", 57, 57.0),
        ("score", 57.300000000001, 57.3),
        ("score", "", None),
        ("next_available", date(2026, 12, 1), "2026-12-01"),
        ("next_available", datetime(2026, 12, 1, 23, 0, tzinfo=UTC), "2026-12-01"),
        ("next_available", "2026-12-01T00:00:00.000+0000", "2026-12-01"),
        # Gainsight's Read API answers Date fields in epoch milliseconds.
        ("next_available", 1_796_083_200_000, "2026-12-01"),
        ("reason", "x" * 300, "x" * REASON_MAX_LENGTH),
        ("reason", None, None),
    ],
)
def test_crm_and_store_shapes_normalise_to_one_value(result: str, raw: Any, normal: Any):
    assert normalise(result, raw) == normal


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (57.0, 57.0, True),
        (57.0, 57.3, True),  # a scale-0 number field stores 57.3 as 57
        (58.0, 57.5, True),  # Salesforce rounds half away from zero
        (57.0, 57.5, False),
        (57.25, 57.3, False),
        (None, 0.0, False),
        (None, None, True),
    ],
)
def test_numbers_compare_as_the_crm_stores_them(a: Any, b: Any, equal: bool):
    assert same("score", a, b) is equal
    assert same("score", b, a) is equal


def test_none_differs_from_false_and_empty_is_none():
    assert not same("eligible", None, False)
    assert same("reason", normalise("reason", ""), None)


@pytest.mark.parametrize(
    ("raw", "on"),
    [
        (True, True),
        ("true", True),
        (1, True),
        (False, False),
        ("false", False),
        (None, False),
        ("", False),
    ],
)
def test_override_checkbox_values(raw: Any, on: bool):
    assert truthy(raw) is on


@pytest.mark.parametrize(
    ("read", "written", "expected"),
    [
        (82.0, 82.0, True),
        (82, 82.0, True),
        (57.0, 57.3, True),  # a scale-0 number field rounds what it is sent
        (58.0, 57.3, False),
        ("Reference Call;Case Study", "Case Study;Reference Call", True),  # picklist order
        ("Reference Call", "Case Study;Reference Call", False),
        ("", None, True),
        ("x", None, False),
        (None, "x", False),
        ("2027-01-15", "2027-01-15", True),
        ("Fatigued ", "Fatigued", True),
        (True, True, True),
        (False, True, False),
    ],
)
def test_a_value_read_back_is_known_for_what_we_wrote(read: Any, written: Any, expected: bool):
    assert same_as_written(read, written) is expected
