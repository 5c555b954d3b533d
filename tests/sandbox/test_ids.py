from __future__ import annotations

import pytest

from sandbox.ids import checksum_suffix, gsid, is_sf_id, sf_id, to18


def test_checksum_matches_salesforce_for_a_known_id() -> None:
    assert to18("00D000000000062") == "00D000000000062EAA"
    assert checksum_suffix("00D000000000062") == "EAA"


@pytest.mark.parametrize("n", [1, 61, 62, 3843, 3844, 999_999, 62**4 + 17])
def test_generated_ids_are_valid_unique_and_prefixed(n: int) -> None:
    ids = {sf_id("003", k) for k in (n, n + 1)}
    assert len(ids) == 2
    for value in ids:
        assert value.startswith("0035g")
        assert is_sf_id(value)
        assert to18(value[:15]) == value


def test_gsids_are_36_characters() -> None:
    assert len(gsid("P", 12)) == 36
    assert gsid("P", 12) != gsid("P", 13)
