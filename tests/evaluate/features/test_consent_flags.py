"""The consent flags' speed path (once per distinct value) against the plain per-row twin."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_service.evaluate.features.consent_flags import with_consent_flags

FEATURES = ["consent_case_study", "consent_beta_advisory", "consent_logo_use", "consent_x"]
_PIECES = ["Case Study", " case study ", "Beta/Advisory", "Logo Use", "X", "Logo", "", ";"]
_values = st.one_of(
    st.none(), st.lists(st.sampled_from(_PIECES), max_size=4).map(";".join), st.text(max_size=12)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_values, max_size=40))
def test_the_flags_per_distinct_value_equal_the_flags_per_row(values: list[str | None]) -> None:
    frame = pl.DataFrame(
        {"contact_id": [f"C{i}" for i in range(len(values))], "consent_types": values},
        schema={"contact_id": pl.String, "consent_types": pl.String},
    )
    fast = with_consent_flags(frame, FEATURES, enabled=True)
    plain = with_consent_flags(frame, FEATURES, enabled=False)
    assert fast.equals(plain)  # same rows, order, columns and types
    assert fast.schema == plain.schema


def test_the_switch_turns_the_speed_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame({"consent_types": ["Logo Use;Case Study", None, "Logo Use"] * 3})
    fast = with_consent_flags(frame, FEATURES)
    monkeypatch.setenv("SYNC_SPEED_PATHS_OFF", "consent_distinct")
    assert with_consent_flags(frame, FEATURES).equals(fast)
    assert fast["consent_case_study"].to_list() == [True, False, False] * 3
    assert fast["consent_x"].to_list() == [False] * 9
