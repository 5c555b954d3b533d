"""The advocacy policy: rules loaded from YAML, evaluated in bulk over features. Pure code.

Features in, results out, ``now`` given; nothing here knows HTTP, a CRM or the store.

Public API::

    policy = load_policy("config/rules.yaml")      # raises PolicyError(problems=[...])
    policy.required_features()                       # what the store must compute
    results = evaluate(policy, features, now)        # one row per contact
    explain(policy, one_row_of_features, now)        # why, for one contact
"""

from __future__ import annotations

from rules.engine import (
    RESULT_COLUMNS,
    account_features_schema,
    cap_words,
    evaluate,
    evaluate_accounts,
    explain,
    rule_column,
    today_for,
)
from rules.policy import (
    CapModel,
    CompiledRule,
    FeatureSpec,
    Policy,
    cap_columns,
    load_policy,
    parse_policy,
)

__all__ = [
    "RESULT_COLUMNS",
    "CapModel",
    "CompiledRule",
    "FeatureSpec",
    "Policy",
    "account_features_schema",
    "cap_columns",
    "cap_words",
    "evaluate",
    "evaluate_accounts",
    "explain",
    "load_policy",
    "parse_policy",
    "rule_column",
    "today_for",
]
