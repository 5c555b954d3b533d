"""Rule conditions are data: only the allow-listed constructs parse; polars sees only our SQL."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from rules.expressions import ExpressionError, compile_expression
from rules.predicates import FUNCTIONS, PredicateError, parse_predicate

SCHEMA: dict[str, pl.DataType] = {
    "nps_latest": pl.Int64(),
    "nps_trend": pl.Int64(),
    "health_score": pl.Float64(),
    "opted_in": pl.Boolean(),
    "renewal_risk": pl.String(),
    "customer_since": pl.Date(),
}
ROWS = pl.DataFrame(
    {
        "nps_latest": [10, 7, None, 9],
        "nps_trend": [1, None, -2, 0],
        "health_score": [80.5, 40.0, None, 70.0],
        "opted_in": [True, False, None, True],
        "renewal_risk": ["High", "Low", None, "at risk"],
        "customer_since": [date(2020, 1, 1), date(2026, 5, 1), None, date(2025, 1, 1)],
    },
    schema=SCHEMA,
)


@pytest.mark.parametrize(
    "text",
    [
        "nps_latest >= 9 AND NOT opted_in = FALSE",
        "nps_latest >= 9 AND nps_latest <= 10 OR health_score > 75",
        "NOT opted_in",
        "opted_in IS NOT TRUE",
        "renewal_risk IN ('High', 'At Risk')",
        "renewal_risk NOT IN ('High')",
        "nps_latest BETWEEN 7 AND 9",
        "nps_latest NOT BETWEEN 7 AND 9",
        "renewal_risk LIKE 'H%'",
        "renewal_risk NOT LIKE 'H%'",
        "renewal_risk ILIKE 'at%'",
        "nps_latest IS NULL",
        "COALESCE(nps_trend, 0) >= 0",
        "customer_since < DATE '2026-01-01'",
        "-nps_trend + 2 * 3 - nps_latest % 4 / 2 > 0",
        "ABS(nps_trend) = 2 OR LOWER(renewal_risk) = 'high'",
        '"nps_latest" == 9',
        "CASE WHEN nps_latest >= 9 THEN TRUE ELSE FALSE END",
        "GREATEST(nps_latest, 8) > LEAST(health_score, 50)",
        "renewal_risk || 'x' = 'Highx'",
    ],
)
def test_allowed_conditions_give_what_polars_gives_for_the_same_text(text: str) -> None:
    expected = ROWS.select(pl.sql_expr(text).alias("r"))["r"].to_list()
    got = ROWS.select(compile_expression(text, SCHEMA).alias("r"))["r"].to_list()
    assert got == expected


def test_operator_precedence_is_kept_by_the_rendered_sql() -> None:
    assert parse_predicate("a OR b AND NOT c").sql == "(a OR (b AND (NOT c)))"
    assert parse_predicate("1 + 2 * 3 = 7").sql == "((1 + (2 * 3)) = 7)"
    assert parse_predicate("COALESCE(a, 0)").names == frozenset({"a"})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "opted_in AND EXISTS (SELECT 1 FROM read_csv('http://127.0.0.1:18557/data.csv'))",
            "'EXISTS' (column 14) is not allowed: a subquery",
        ),
        ("opted_in AND read_json('/etc/passwd') IS NULL", "function 'read_json(...)'"),
        ("read_csv('/etc/passwd')", "function 'read_csv(...)'"),
        ("read_parquet('s3://bucket/x')", "function 'read_parquet(...)'"),
        ("nps_latest IN (SELECT nps FROM contacts)", "'SELECT' (column 16) is not allowed"),
        ("(SELECT 1) = 1", "'SELECT'"),
        ("contacts.email LIKE '%@x.com'", "'contacts.email' is not allowed"),
        ("nps_latest > 9; DROP TABLE contacts", "';' (column 15) is not allowed"),
        ("nps_latest > 9 -- comment", "a comment"),
        ("nps_latest > 9 /* x */", "a comment"),
        ("CAST(nps_latest AS VARCHAR) = '9'", "'CAST'"),
        ("customer_since > DATE '2026-01-01' - INTERVAL '3 days'", "'INTERVAL'"),
        ("COALESCE(nps_latest, (SELECT 1))", "'SELECT'"),
        ("COALESCE()", "COALESCE takes"),
        ("nps_latest > 9 UNION SELECT 1", "'UNION'"),
        ("nps_latest >= ", "syntax error"),
        ("nps_latest => 9", "syntax error: unexpected '>'"),
        ("customer_since > DATE '2026-13-45x'", "is not a valid date"),
        ('"a""b" > 1', "syntax error"),
        ("renewal_risk = 'x", "unterminated quote at column 16"),
    ],
)
def test_anything_outside_the_allow_list_is_refused_naming_the_construct(
    text: str, needle: str
) -> None:
    with pytest.raises(PredicateError) as info:
        parse_predicate(text)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_a_refused_table_function_never_reaches_polars(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def spy(sql: str) -> pl.Expr:
        seen.append(sql)
        return pl.lit(True)

    monkeypatch.setattr(pl, "sql_expr", spy)
    with pytest.raises(ExpressionError, match="not allowed"):
        compile_expression("opted_in AND EXISTS (SELECT 1 FROM read_json('/etc/passwd'))", SCHEMA)
    assert seen == []
    compile_expression("nps_latest >= 9", SCHEMA)
    assert seen == ["(nps_latest >= 9)"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_allowed_function_is_one_polars_knows(name: str) -> None:
    arity = FUNCTIONS[name][0]
    args = {
        "STARTS_WITH": "renewal_risk, 'H'",
        "ENDS_WITH": "renewal_risk, 'h'",
        "LOWER": "renewal_risk",
        "UPPER": "renewal_risk",
        "LENGTH": "renewal_risk",
        "TRIM": "renewal_risk",
        "LTRIM": "renewal_risk",
        "RTRIM": "renewal_risk",
    }.get(name, ", ".join(["health_score"] * arity))
    checked = parse_predicate(f"{name}({args})")
    ROWS.select(pl.sql_expr(checked.sql).alias("r"))
