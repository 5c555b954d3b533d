"""config/matching.yaml: validated like the policy (every problem, file:line, did-you-mean)."""

from __future__ import annotations

from pathlib import Path

import pytest

from canonical.errors import ConfigError, MatchingError
from sync_service.match.config import load_matching, parse_matching, term_fields

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = {"employees": "integer", "annual_revenue": "number", "tier": "string"}


def test_the_shipped_file_is_valid() -> None:
    rules = load_matching(ROOT / "config" / "matching.yaml", EXTRAS)  # type: ignore[arg-type]
    assert rules.top_n == 3
    assert rules.weights == {"industry": 3, "region": 2, "segment": 1, "size_band": 1}
    assert rules.extras == frozenset({"employees"})
    assert term_fields(rules) == ["industry", "region", "segment", "employees"]


def test_a_misspelt_term_names_its_line_and_the_field_meant() -> None:
    text = "version: 1\nterms:\n  industry: 3\n  regoin: 2\n"
    with pytest.raises(MatchingError) as info:
        parse_matching(text, EXTRAS, "m.yaml")  # type: ignore[arg-type]
    assert info.value.problems == [
        "m.yaml:4:3: terms.regoin: unknown account field; did you mean 'region'?"
    ]
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == 2


def test_every_problem_is_reported_at_once_with_did_you_mean_for_keys() -> None:
    text = (
        "version: 1\n"
        "top_n: 0\n"
        "terms: {industry: 1}\n"
        "opportunities:\n"
        "  min_amout: 5\n"
        "load_spreading: -1\n"
    )
    with pytest.raises(MatchingError) as info:
        parse_matching(text, EXTRAS, "m.yaml")  # type: ignore[arg-type]
    problems = info.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("m.yaml:2:1: top_n: Input should be greater than or equal to 1")
    typo = "m.yaml:5:3: opportunities.min_amout: unknown key; did you mean 'min_amount'?"
    assert typo in problems
    assert any(p.startswith("m.yaml:6:1: load_spreading:") for p in problems)


def test_a_mapped_extra_field_may_be_a_term_and_the_size_field_must_be_numeric() -> None:
    ok = parse_matching("terms: {tier: 2, industry: 1}\n", EXTRAS, "m.yaml")  # type: ignore[arg-type]
    assert ok.extras == frozenset({"tier"})
    text = "terms: {size_band: 1}\nsize: {field: tier, bounds: [10, 5]}\n"
    with pytest.raises(MatchingError) as info:
        parse_matching(text, EXTRAS, "m.yaml")  # type: ignore[arg-type]
    assert info.value.problems == [
        "m.yaml:2:8: size.field: 'tier' is not a numeric account field; one of health_score, "
        "nps_score, annual_revenue, employees",
        "m.yaml:2:21: size.bounds: must increase (got 10, 5)",
    ]


def test_size_band_needs_a_size_section_and_weights_are_positive() -> None:
    with pytest.raises(MatchingError) as info:
        parse_matching("terms: {size_band: 1, region: 0}\n", EXTRAS, "m.yaml")  # type: ignore[arg-type]
    assert info.value.problems == [
        "m.yaml:1:23: terms.region: the weight must be above 0 (got 0)",
        "m.yaml:1:9: terms.size_band: needs a 'size:' section (field and bounds)",
    ]


def test_a_yaml_syntax_error_and_a_missing_file_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(MatchingError, match=r"^m.yaml:\d+:\d+: YAML syntax error"):
        parse_matching("terms: [\n", EXTRAS, "m.yaml")  # type: ignore[arg-type]
    with pytest.raises(MatchingError, match="matching file not found; create it"):
        load_matching(tmp_path / "nope.yaml", EXTRAS)  # type: ignore[arg-type]
