"""The seed's word lists: package data that an installed sandbox finds, checked when read."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

import sandbox
from sandbox.seed.words import check_words, load_words

ROOT = Path(__file__).resolve().parents[2]


def test_every_data_file_is_shipped_as_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["sandbox"]
    package = Path(sandbox.__file__).parent
    files = [p.relative_to(package).as_posix() for p in (package / "data").iterdir()]
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, g) for g in globs), name


def test_weighted_tables_repeat_each_value_by_its_weight_in_file_order() -> None:
    words = load_words()
    assert words.countries["NA"] == ("United States",) * 3 + ("Canada",)
    assert words.membership_status == ("Active", "Active", "Active", "Paused", "Left")
    assert set(words.countries) == set(words.region)
    assert words.segment.count("SMB") == 50


def test_a_bad_word_file_reports_every_problem_at_once() -> None:
    data = {
        "first_names": [],
        "last_names": ["Smith"],
        "company_name_first": ["Acme"],
        "company_name_second": ["Labs"],
        "company_suffixes": ["Inc"],
        "titles": ["CTO", 3],
        "case_subjects": ["Login failure"],
        "countries": {"NA": {"Canada": 1}},
        "weights": {"region": {"NA": 1, "EMEA": 1}, "colour": {"Red": 1}, "segment": {"SMB": 0}},
    }
    with pytest.raises(ValueError, match=r"seed_words\.json is invalid") as caught:
        check_words(data)
    message = str(caught.value)
    for problem in (
        "first_names:",
        "titles:",
        "unknown tables ['colour']",
        "countries: one table per region",
        "segment: a non-empty object of positive integer weights",
        "industry: a non-empty object",
    ):
        assert problem in message
    assert "last_names" not in message
