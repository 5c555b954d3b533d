"""Loading config/rules.yaml: the shipped policy is valid; bad edits are rejected with file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from canonical.errors import PolicyError
from rules import load_policy, parse_policy
from tests.rules.helpers import ROOT

GOOD = """\
version: "t1"
features:
  nps_latest: integer
  opted_in: boolean
  open_escalations: integer
eligibility:
  - id: promoter
    when: >-
      nps_latest >= 9
    reason: not a promoter
suspension:
  - id: escalated
    when: >-
      open_escalations > 0
    reason: escalated
fatigue:
  rest_days: 14
  caps:
    - id: quarter
      scope: contact
      window_days: 90
      max_asks: 3
"""


def problems_of(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    for line in info.value.problems:
        assert line.startswith(f"{path}:"), line
    return info.value.problems


def test_the_shipped_policy_is_valid_and_versioned() -> None:
    policy = load_policy(ROOT / "config" / "rules.yaml")
    assert policy.version
    assert len(policy.hash) == 64
    ids = [r.id for r in policy.rules]
    assert {
        "withdrawn",
        "opted_in",
        "recent_promoter",
        "past_onboarding",
        "open_escalation",
        "long_open_p1",
        "payment_overdue",
        "renewal_at_risk",
    } <= set(ids)
    caps = {c.id: (c.scope, c.window_days, c.max_asks) for c in policy.caps}
    assert caps == {
        "reference_calls": ("contact", 30, 1),
        "contact_quarter": ("contact", 90, 3),
        "account_quarter": ("account", 90, 6),
    }
    assert policy.rest_days == 14


def test_the_hash_changes_with_the_file(tmp_path: Path) -> None:
    a = parse_policy(GOOD, "a.yaml")
    b = parse_policy(GOOD.replace("max_asks: 3", "max_asks: 4"), "a.yaml")
    assert a.hash != b.hash
    assert a.version == b.version == "t1"


@pytest.mark.parametrize(
    ("old", "new", "line", "needle"),
    [
        # syntax error inside the expression
        ("nps_latest >= 9\n", "nps_latest >= \n", 9, "syntax error"),
        ("nps_latest >= 9\n", "nps_latest => 9\n", 9, "syntax error"),
        # unknown feature, with a suggestion
        ("open_escalations > 0\n", "open_escalation > 0\n", 14, "did you mean 'open_escalations'"),
        # type mismatch: comparing a number with text
        ("nps_latest >= 9\n", "nps_latest >= 'nine'\n", 9, "type mismatch"),
        # booleans are booleans
        ("nps_latest >= 9\n", "opted_in = 'yes'\n", 9, "type mismatch"),
        # a clock inside a rule would make two evaluations of one run disagree
        (
            "nps_latest >= 9\n",
            "nps_latest >= 9 AND CURRENT_DATE > DATE '2020-01-01'\n",
            9,
            "one 'now'",
        ),
        # not a condition at all
        ("nps_latest >= 9\n", "nps_latest + 1\n", 9, "not true/false"),
    ],
)
def test_bad_expressions_are_reported_at_their_line(
    tmp_path: Path, old: str, new: str, line: int, needle: str
) -> None:
    problems = problems_of(GOOD.replace(old, new, 1), tmp_path)
    assert len(problems) == 1
    assert f"rules.yaml:{line}:" in problems[0]
    assert needle in problems[0]


@pytest.mark.parametrize(
    ("when_line", "needle"),
    [
        ("    when: !payment_overdue\n", "reads as a tag"),  # '!' starts a YAML tag
        ("    when: # nps_latest >= 9\n", "got nothing"),  # '#' starts a comment
        ("    when: 9\n", "got int"),
    ],
)
def test_a_rule_that_is_not_a_string_is_rejected(
    tmp_path: Path, when_line: str, needle: str
) -> None:
    text = GOOD.replace("    when: >-\n      nps_latest >= 9\n", when_line, 1)
    problems = problems_of(text, tmp_path)
    assert any(":8:" in p and needle in p and "block string" in p for p in problems), problems


def test_a_cap_without_a_window_is_rejected(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("      window_days: 90\n", ""), tmp_path)
    assert len(problems) == 1
    assert "rules.yaml:19:" in problems[0]
    assert "window_days" in problems[0]


def test_duplicate_rule_ids_are_rejected(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("id: escalated", "id: promoter"), tmp_path)
    assert len(problems) == 1
    assert "rules.yaml:12:" in problems[0]
    assert "duplicate rule id 'promoter'" in problems[0]
    assert "rules.yaml:7:" in problems[0]  # where the first one is


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("nps_latest >= 9\n", "nps_lates >= 9\n").replace(
        "open_escalations > 0\n", "open_escalations > 'x'\n"
    )
    problems = problems_of(text, tmp_path)
    assert len(problems) == 2
    assert "did you mean 'nps_latest'" in problems[0]
    assert "type mismatch" in problems[1]


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    text = GOOD.replace("    reason: escalated\n", "    reason: escalated: since then\n")
    problems = problems_of(text, tmp_path)
    assert "rules.yaml:15:" in problems[0]
    assert "YAML syntax error" in problems[0]


def test_unknown_keys_and_features_are_rejected(tmp_path: Path) -> None:
    text = GOOD.replace("  rest_days: 14\n", "  rest_dayz: 14\n").replace(
        "  opted_in: boolean\n", "  opted_inn: boolean\n"
    )
    problems = problems_of(text, tmp_path)
    assert any(":17:" in p and "fatigue.rest_dayz: unknown key" in p for p in problems), problems
    assert any(":4:" in p and "did you mean 'opted_in'" in p for p in problems), problems


def test_a_feature_declared_with_the_wrong_type_is_rejected(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("opted_in: boolean", "opted_in: integer"), tmp_path)
    assert "rules.yaml:4:" in problems[0]
    assert "is boolean, declared integer" in problems[0]


def test_a_reason_naming_an_unknown_feature_is_rejected(tmp_path: Path) -> None:
    problems = problems_of(
        GOOD.replace("reason: escalated", "reason: since {oldest_escalation}"), tmp_path
    )
    assert "rules.yaml:15:" in problems[0]
    assert "unknown feature {oldest_escalation}" in problems[0]


def test_a_reason_naming_a_day_count_is_refused_with_the_date_to_use(tmp_path: Path) -> None:
    # "open for 186 days" becomes "187 days" tomorrow: the CRM field would be rewritten daily.
    text = GOOD.replace(
        "  open_escalations: integer\n",
        "  open_escalations: integer\n  oldest_open_p1_days: integer\n",
    ).replace("reason: escalated", "reason: P1 open for {oldest_open_p1_days} days")
    [problem] = problems_of(text, tmp_path)
    assert "rules.yaml:16:" in problem
    assert "{oldest_open_p1_days} counts days" in problem
    assert "name the date instead ({oldest_open_p1_date}" in problem


def test_a_null_reason_naming_a_day_count_is_refused_too(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  nps_latest: integer\n", "  nps_latest: integer\n  nps_age_days: integer\n"
    ).replace(
        "reason: not a promoter", "reason: not a promoter\n    null_reason: asked {nps_age_days}"
    )
    [problem] = problems_of(text, tmp_path)
    assert "({nps_latest_date}" in problem


def test_a_score_term_counting_days_must_count_whole_periods(tmp_path: Path) -> None:
    head = GOOD.replace(
        "  nps_latest: integer\n", "  nps_latest: integer\n  tenure_days: integer\n"
    )
    creeping = (
        head + "score:\n  terms:\n    - {id: t, value: tenure_days, min: 0, max: 900, weight: 1}\n"
    )
    [problem] = problems_of(creeping, tmp_path)
    assert "score.terms[0] (t).value: tenure_days counts days" in problem
    assert "FLOOR(tenure_days / 365)" in problem
    whole = creeping.replace(
        "value: tenure_days, min: 0, max: 900", "value: FLOOR(tenure_days / 365), min: 0, max: 3"
    )
    assert parse_policy(whole, "x.yaml").terms[0].id == "t"


def test_admin_mapped_extra_fields_can_be_used(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  open_escalations: integer\n",
        "  open_escalations: integer\n"
        "  partner_tier: {type: string, extra: Partner_Tier__c, entity: account}\n",
    ).replace("nps_latest >= 9\n", "nps_latest >= 9 AND partner_tier <> 'Blocked'\n")
    policy = parse_policy(text, "x.yaml")
    spec = policy.required_features()["partner_tier"]
    assert (spec.type, spec.level, spec.extra) == ("string", "account", "Partner_Tier__c")


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


def test_an_unquoted_hash_inside_a_one_line_condition_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    when: >-\n      nps_latest >= 9\n", "    when: nps_latest >= 9 #AND opted_in\n", 1
    )
    [problem] = problems_of(text, tmp_path)
    assert "rules.yaml:8:5: eligibility[0] (promoter).when: an unquoted ' #'" in problem
    assert "only 'nps_latest >= 9' was read" in problem


def test_a_hash_in_a_block_string_or_in_quotes_is_text(tmp_path: Path) -> None:
    for when in ('    when: "nps_latest >= 9"  # a comment after quotes is fine\n',):
        path = tmp_path / "rules.yaml"
        path.write_text(GOOD.replace("    when: >-\n      nps_latest >= 9\n", when, 1))
        assert load_policy(path).rules_of("eligibility")[0].when == "nps_latest >= 9"


def test_a_leading_bang_is_refused_with_a_hint_to_write_not(tmp_path: Path) -> None:
    text = GOOD.replace("    when: >-\n      nps_latest >= 9\n", "    when: !opted_in\n", 1)
    [problem] = problems_of(text, tmp_path)
    assert "starts with '!opted_in', which YAML reads as a tag" in problem
    assert "write NOT" in problem


def test_an_inverted_score_range_is_refused(tmp_path: Path) -> None:
    text = (
        GOOD + "score:\n  terms:\n    - {id: nps, value: nps_latest, min: 10, max: 6, weight: 1}\n"
    )
    [problem] = problems_of(text, tmp_path)
    assert "score.terms[0] (nps): min (10) is above max (6); swap them" in problem


def test_a_misspelt_rule_key_gets_a_suggestion(tmp_path: Path) -> None:
    problems = problems_of(
        GOOD.replace("    reason: escalated\n", "    reasn: escalated\n"), tmp_path
    )
    assert any(
        "suspension[0] (escalated).reasn: unknown key; did you mean 'reason'?" in p
        for p in problems
    ), problems


def test_a_non_utf8_byte_is_one_line_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(GOOD.encode().replace(b"reason: escalated", b"reason: escalad\xe9", 1))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.problems == [
        f"{path}:15:20: byte 0xe9 is not UTF-8; save the file as UTF-8 (an accented letter "
        "typed in another encoding, e.g. Latin-1)"
    ]


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    import time

    path = tmp_path / "rules.yaml"
    with path.open("w") as fh:
        fh.write(GOOD)
        fh.write("# " + "x" * 60 * 1024 * 1024 + "\n")
    started = time.monotonic()
    with pytest.raises(PolicyError, match=r"file is 60\.0 MiB, over the 1 MiB limit"):
        load_policy(path)
    assert time.monotonic() - started < 1
