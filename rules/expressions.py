"""Rule expressions: SOQL-like WHERE clauses compiled to polars expressions, and reason templates.

An expression is the boolean condition an admin writes in a Salesforce report filter or a SOQL
WHERE clause: ``nps_latest >= 9 AND open_escalations = 0 AND NOT payment_overdue``. It is first
parsed and checked against an allow-list by :mod:`rules.predicates` (features, literals, operators,
a named list of pure functions: no subquery, table, file or URL); only the SQL rendered from that
syntax tree is compiled by polars (``pl.sql_expr``), and the compiled expression evaluates a whole
features frame at once.

Semantics (tested in ``tests/rules``):

* Comparison with NULL is NULL (SQL three-valued logic); a predicate holds only when it is TRUE.
  A NULL outcome is reported with the rule's ``null_reason`` ("no NPS response"), never an error.
* Booleans are booleans: ``NOT payment_overdue``, ``opted_in = TRUE``.
* Dates compare with date literals (``customer_since < DATE '2026-01-01'``) or with other dates.
* There is no clock inside an expression: ``NOW()`` and ``CURRENT_DATE`` are refused, so one run
  uses one ``now``; relative windows come from features such as ``nps_age_days``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from canonical.model import FieldType
from canonical.yaml import did_you_mean
from rules.predicates import PredicateError, parse_predicate

POLARS_TYPES: dict[FieldType, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
}

#: Functions that read the clock: refused so that one run sees one ``now``.
_CLOCK_WORDS = re.compile(
    r"\b(now|current_date|current_timestamp|current_time|localtime|localtimestamp|today|"
    r"random|rand|uuid)\b",
    re.IGNORECASE,
)
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r'"([^"]+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b')
_NOT_FOUND = re.compile(r'unable to find column "([^"]+)"')

#: Polars error text that is noise for an admin; cut at the first of these.
_NOISE = ("\n", " This error occurred", " Resolved plan")


class ExpressionError(ValueError):
    """An expression cannot be compiled or does not fit the declared features."""


@dataclass(frozen=True)
class Template:
    """A reason template: literal text with ``{feature}`` placeholders."""

    text: str
    fields: tuple[str, ...]

    def expr(self, schema: dict[str, pl.DataType]) -> pl.Expr:
        """A string expression filling the template from the frame's columns (NULL -> 'unknown')."""
        parts: list[pl.Expr] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(self.text):
            if m.start() > pos:
                parts.append(pl.lit(self.text[pos : m.start()]))
            parts.append(_as_text(m.group(1), schema[m.group(1)]))
            pos = m.end()
        if pos < len(self.text):
            parts.append(pl.lit(self.text[pos:]))
        if not parts:
            return pl.lit("")
        return pl.concat_str(parts) if len(parts) > 1 else parts[0].cast(pl.String)

    def fill(self, values: dict[str, object]) -> str:
        """The template filled from one entity's values (the scalar twin of :meth:`expr`)."""
        return _PLACEHOLDER.sub(lambda m: format_value(values.get(m.group(1))), self.text)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def format_value(value: object) -> str:
    """How a feature value reads in a reason: ISO dates, trimmed numbers, 'unknown' for NULL."""
    if value is None:
        return "unknown"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.Boolean:
        text = pl.when(col).then(pl.lit("yes")).otherwise(pl.lit("no"))
    elif isinstance(dtype, pl.Datetime):
        text = col.dt.date().dt.strftime("%Y-%m-%d")
    elif dtype == pl.Date:
        text = col.dt.strftime("%Y-%m-%d")
    elif dtype.is_float():
        # '%g'-like: 7.0 -> '7', 7.25 -> '7.25'
        text = col.round(2).cast(pl.String).str.replace(r"\.0$", "")
    else:
        text = col.cast(pl.String)
    return pl.when(col.is_null()).then(pl.lit("unknown")).otherwise(text)


def parse_template(text: str, known: dict[str, pl.DataType]) -> Template:
    """Parse a reason template; every ``{name}`` must be a known column.

    Raises:
        ExpressionError: naming the unknown placeholder, with a suggestion.
    """
    names = tuple(_PLACEHOLDER.findall(text))
    for name in names:
        if name not in known:
            msg = f"unknown feature {{{name}}} in the reason{_did_you_mean(name, known)}"
            raise ExpressionError(msg)
    stray = _PLACEHOLDER.sub("", text)
    if "{" in stray or "}" in stray:
        msg = "unbalanced '{' or '}' in the reason; placeholders look like {feature_name}"
        raise ExpressionError(msg)
    return Template(text=text, fields=names)


def _did_you_mean(name: str, known: dict[str, pl.DataType] | list[str]) -> str:
    return did_you_mean(name, known, otherwise="; declare it under features:")


def referenced_names(text: str) -> set[str]:
    """Identifiers an expression mentions (outside string literals); keywords included."""
    stripped = _STRING_LITERAL.sub("''", text)
    return {m.group(1) or m.group(2) for m in _IDENT.finditer(stripped)}


def compile_expression(
    text: str, schema: dict[str, pl.DataType], *, want: str = "boolean"
) -> pl.Expr:
    """Compile ``text`` and check it against an empty frame typed with ``schema``.

    Args:
        text: the WHERE-clause expression.
        schema: the declared features and their polars types.
        want: ``boolean`` for predicates, ``number`` for score values.

    Raises:
        ExpressionError: one line saying what is wrong (syntax, unknown feature with a
            suggestion, type mismatch, clock function, wrong result type).
    """
    text = text.strip()
    if not text:
        msg = "the expression is empty"
        raise ExpressionError(msg)
    clock = _CLOCK_WORDS.search(_STRING_LITERAL.sub("''", text))
    if clock:
        msg = (
            f"'{clock.group(0)}' is not allowed: a run uses one 'now'; use a feature such as "
            "nps_age_days or days_since_last_ask instead"
        )
        raise ExpressionError(msg)
    try:
        # Polars never sees the admin's text: only the SQL rendered from the checked syntax tree.
        checked = parse_predicate(text)
    except PredicateError as exc:
        raise ExpressionError(str(exc)) from None
    try:
        expr = pl.sql_expr(checked.sql)
    except Exception as exc:
        msg_0 = f"syntax error: {_clean(exc)}"
        raise ExpressionError(msg_0) from None
    _check_booleans(text, schema)
    empty = pl.DataFrame(schema=schema)
    try:
        out = empty.lazy().select(expr.alias("_r")).collect()
    except pl.exceptions.ColumnNotFoundError as exc:
        m = _NOT_FOUND.search(str(exc))
        name = m.group(1) if m else "?"
        msg_0 = f"unknown feature '{name}'{_did_you_mean(name, schema)}"
        raise ExpressionError(msg_0) from None
    except Exception as exc:
        msg_0 = f"type mismatch: {_clean(exc)}"
        raise ExpressionError(msg_0) from None
    dtype = out.schema["_r"]
    if want == "boolean" and dtype not in (pl.Boolean, pl.Null):
        msg = (
            f"the expression gives {_type_word(dtype)}, not true/false; "
            "compare it, e.g. 'health_score >= 70'"
        )
        raise ExpressionError(msg)
    if want == "number" and not (dtype.is_numeric() or dtype == pl.Boolean):
        msg_0 = f"the score value gives {_type_word(dtype)}, not a number"
        raise ExpressionError(msg_0)
    return expr


_OPS = r"(?:==|=|<>|!=|<=|>=|<|>|\+|-|\*|/|%)"
_OPERAND = r"(\"[^\"]+\"|'(?:[^']|'')*'|[A-Za-z0-9_.]+)"


def _check_booleans(text: str, schema: dict[str, pl.DataType]) -> None:
    # polars would quietly cast 'yes' or 1 to a boolean; an admin who writes opted_in = 'yes'
    # means something else, so booleans are only used as booleans (or compared with TRUE/FALSE).
    booleans = {n for n, t in schema.items() if t == pl.Boolean}
    if not booleans:
        return
    ok = {"true", "false", "null"} | {b.lower() for b in booleans}
    for m in re.finditer(rf"{_OPERAND}\s*({_OPS})\s*{_OPERAND}", text):
        left, right = m.group(1).strip('"'), m.group(3).strip('"')
        for a, b in ((left, right), (right, left)):
            if a in booleans and (b.lower() not in ok or m.group(2) not in ("=", "==", "<>", "!=")):
                msg = (
                    f"type mismatch: '{a}' is true/false; use it as it is ('{a}', 'NOT {a}') "
                    "or compare it with TRUE or FALSE"
                )
                raise ExpressionError(msg)


def _type_word(dtype: pl.DataType) -> str:
    if dtype == pl.String:
        return "text"
    if dtype.is_numeric():
        return "a number"
    if dtype == pl.Date:
        return "a date"
    return str(dtype)


def _clean(exc: Exception) -> str:
    text = str(exc).strip()
    for cut in _NOISE:
        idx = text.find(cut)
        if idx > 0:
            text = text[:idx]
    return text.strip().rstrip(":")
