"""A SOQL parser for the queries a sync sends, compiled to SQLite over the sandbox's tables.

Supported: ``SELECT f1, f2 | COUNT() | COUNT(Id) FROM Obj [WHERE ...] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`` with ``AND``/``OR``/``NOT``, parentheses,
``= != <> < <= > >= LIKE IN NOT IN``, string/number/boolean/null, date (``2026-01-01``) and
datetime literals (``2026-01-01T00:00:00Z``, ``...+00:00``, ``.000+0000``) and the date literals
``TODAY``, ``YESTERDAY``, ``LAST_N_DAYS:n``, ``N_DAYS_AGO:n``. Field and object names resolve
case-insensitively; string comparisons are case-insensitive like Salesforce's. A parent field
one level up (``Account.Name``) is supported through a join.

Errors are ``SoqlError(code, message)`` with Salesforce's codes: ``MALFORMED_QUERY``,
``INVALID_FIELD``, ``INVALID_TYPE``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.ids import to18
from sandbox.schema import NUMBER_TYPES, STRING_TYPES, Field, ObjectDef
from sandbox.store import quote

MALFORMED = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"
OUT_OF_RANGE = "NUMBER_OUTSIDE_VALID_RANGE"


class SoqlError(Exception):
    """A query Salesforce would reject: ``code`` is its errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<datefn>[A-Za-z_]+:\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)

_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "like",
    "order",
    "by",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "limit",
    "offset",
    "true",
    "false",
    "null",
    "count",
    "includes",
    "excludes",
    "group",
    "having",
}
#: Text compared case-insensitively, as Salesforce does (ids are case-sensitive).
_NOCASE_TYPES = STRING_TYPES - {"id", "reference"}
_DATE_WORDS = {"today", "yesterday", "tomorrow"}


@dataclass
class Tok:
    """One token: kind and text."""

    kind: str
    text: str

    @property
    def word(self) -> str:
        """The lower-cased text (for keywords)."""
        return self.text.lower()


def tokenize(soql: str) -> list[Tok]:
    """Split a query into tokens; anything unrecognised is MALFORMED_QUERY."""
    out: list[Tok] = []
    pos = 0
    while pos < len(soql):
        m = _TOKEN.match(soql, pos)
        if m is None:
            raise SoqlError(MALFORMED, f"unexpected token: '{soql[pos : pos + 20]}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Tok(kind, m.group()))
        pos = m.end()
    return out


@dataclass
class Column:
    """One selected field: the field and, for ``Parent.Field``, the relationship."""

    path: str  # as Salesforce names it in the response: "Name" or "Account.Name"
    field: Field
    relation: Field | None = None  # the reference field on the queried object
    parent: ObjectDef | None = None


@dataclass
class Query:
    """A compiled query."""

    obj: ObjectDef
    columns: list[Column]
    count_only: bool
    where_sql: str
    params: list[Any]
    order_sql: str
    limit: int | None
    offset: int
    joins: dict[str, tuple[Field, ObjectDef]] = field(default_factory=dict)


def sf_datetime(value: dt.datetime) -> str:
    """Salesforce's stored and returned datetime text for an aware datetime."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime_literal(text: str) -> dt.datetime:
    """Parse a SOQL datetime literal into an aware UTC datetime."""
    norm = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", norm):
        norm = norm[:-2] + ":" + norm[-2:]
    try:
        return dt.datetime.fromisoformat(norm).astimezone(dt.UTC)
    except ValueError as exc:
        raise SoqlError(MALFORMED, f"invalid datetime literal: {text}") from exc


class _Parser:
    def __init__(
        self,
        soql: str,
        objects: dict[str, ObjectDef],
        today: dt.date,
    ) -> None:
        self.soql = soql
        self.toks = tokenize(soql)
        self.i = 0
        self.objects = objects
        self.today = today
        self.params: list[Any] = []
        self.obj: ObjectDef | None = None
        self.joins: dict[str, tuple[Field, ObjectDef]] = {}

    # -- token helpers -----------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Tok | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise SoqlError(MALFORMED, "unexpected end of query")
        self.i += 1
        return tok

    def accept(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "ident" and tok.word == word:
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            tok = self.peek()
            found = tok.text if tok else "end of query"
            raise SoqlError(MALFORMED, f"expecting '{word.upper()}', found '{found}'")

    def punct(self, ch: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == ch:
            self.i += 1
            return True
        return False

    # -- grammar -----------------------------------------------------------------------------
    def parse(self) -> Query:
        self.expect("select")
        count_only = False
        raw_fields: list[str] = []
        tok = self.peek()
        if tok is not None and tok.word == "count" and (p := self.peek(1)) and p.text == "(":
            self.i += 2
            if not self.punct(")"):
                self.next()  # COUNT(Id)
                if not self.punct(")"):
                    raise SoqlError(MALFORMED, "expecting ')' after COUNT(")
            count_only = True
        else:
            while True:
                tok = self.next()
                if tok.kind != "ident" or (tok.word in _KEYWORDS and tok.word != "first"):
                    raise SoqlError(MALFORMED, f"unexpected token: '{tok.text}'")
                raw_fields.append(tok.text)
                if not self.punct(","):
                    break
        self.expect("from")
        name_tok = self.next()
        if name_tok.kind != "ident":
            raise SoqlError(MALFORMED, f"unexpected token: '{name_tok.text}'")
        obj = self._object(name_tok.text)
        self.obj = obj
        columns = [self._column(obj, name) for name in raw_fields]
        seen: set[str] = set()
        for col in columns:
            if col.path.lower() in seen:
                raise SoqlError(MALFORMED, f"duplicate field selected: {col.path}")
            seen.add(col.path.lower())
        where_sql = ""
        if self.accept("where"):
            where_sql = self._or()
        order_sql = ""
        if self.accept("order"):
            self.expect("by")
            parts = []
            while True:
                col = self._column(obj, self._ident())
                expr = self._col_sql(col)
                if col.field.type in _NOCASE_TYPES:
                    expr += " COLLATE NOCASE"
                if self.accept("desc"):
                    expr += " DESC"
                else:
                    self.accept("asc")
                if self.accept("nulls"):
                    if self.accept("first"):
                        expr += " NULLS FIRST"
                    else:
                        self.expect("last")
                        expr += " NULLS LAST"
                parts.append(expr)
                if not self.punct(","):
                    break
            order_sql = ", ".join(parts)
        limit = None
        offset = 0
        if self.accept("limit"):
            limit = self._int()
        if self.accept("offset"):
            offset = self._int()
            if offset > 2000:
                raise SoqlError(OUT_OF_RANGE, "Maximum SOQL offset allowed is 2000")
        if self.peek() is not None:
            raise SoqlError(MALFORMED, f"unexpected token: '{self.next().text}'")
        return Query(
            obj,
            columns,
            count_only,
            where_sql,
            self.params,
            order_sql,
            limit,
            offset,
            self.joins,
        )

    def _ident(self) -> str:
        tok = self.next()
        if tok.kind != "ident":
            raise SoqlError(MALFORMED, f"unexpected token: '{tok.text}'")
        return tok.text

    def _int(self) -> int:
        tok = self.next()
        if tok.kind != "number" or not tok.text.isdigit():
            raise SoqlError(MALFORMED, f"expecting a non-negative integer, found '{tok.text}'")
        return int(tok.text)

    def _object(self, name: str) -> ObjectDef:
        for obj in self.objects.values():
            if obj.name.lower() == name.lower():
                return obj
        raise SoqlError(
            INVALID_TYPE,
            f"sObject type '{name}' is not supported. If you are attempting to use a custom "
            "object, be sure to append the '__c' after the entity name. Please reference your "
            "WSDL or the describe call for the appropriate names.",
        )

    def _column(self, obj: ObjectDef, name: str) -> Column:
        if "." in name:
            rel_name, _, rest = name.partition(".")
            rel = obj.relationship(rel_name)
            if rel is None or "." in rest or not rel.reference_to:
                raise SoqlError(
                    INVALID_FIELD,
                    f"Didn't understand relationship '{rel_name}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' "
                    "after the custom relationship name.",
                )
            parent = self.objects[rel.reference_to[0]]
            f = parent.field(rest)
            if f is None:
                raise self._no_column(rest, parent.name)
            assert rel.relationship_name is not None
            self.joins[rel.relationship_name] = (rel, parent)
            return Column(f"{rel.relationship_name}.{f.name}", f, rel, parent)
        f = obj.field(name)
        if f is None:
            raise self._no_column(name, obj.name)
        return Column(f.name, f)

    @staticmethod
    def _no_column(name: str, obj: str) -> SoqlError:
        return SoqlError(
            INVALID_FIELD,
            f"No such column '{name}' on entity '{obj}'. If you are attempting to use a custom "
            "field, be sure to append the '__c' after the custom field name. Please reference "
            "your WSDL or the describe call for the appropriate names.",
        )

    def _col_sql(self, col: Column) -> str:
        if col.relation is None:
            return "t." + quote(col.field.name)
        assert col.relation.relationship_name is not None
        return quote("j_" + col.relation.relationship_name) + "." + quote(col.field.name)

    def _or(self) -> str:
        first, chained = self._and()
        parts = [first]
        while self.accept("or"):
            part, and_chain = self._and()
            chained = chained or and_chain
            parts.append(part)
        if len(parts) > 1 and chained:
            # Salesforce has no AND/OR precedence: mixing them needs parentheses.
            raise SoqlError(
                MALFORMED,
                "unexpected token: 'OR': AND and OR cannot be mixed without parentheses",
            )
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self) -> tuple[str, bool]:
        parts = [self._not()]
        while self.accept("and"):
            parts.append(self._not())
        if len(parts) == 1:
            return parts[0], False
        return "(" + " AND ".join(parts) + ")", True

    def _not(self) -> str:
        if self.accept("not"):
            return f"(NOT {self._not()})"
        if self.punct("("):
            inner = self._or()
            if not self.punct(")"):
                raise SoqlError(MALFORMED, "expecting ')'")
            return f"({inner})"
        return self._condition()

    def _condition(self) -> str:
        assert self.obj is not None
        col = self._column(self.obj, self._ident())
        sql = self._col_sql(col)
        f = col.field
        nocase = " COLLATE NOCASE" if f.type in _NOCASE_TYPES else ""
        tok = self.next()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            value = self._value(f)
            if value is None:
                if op == "=":
                    return f"{sql} IS NULL"
                if op == "!=":
                    return f"{sql} IS NOT NULL"
                raise SoqlError(MALFORMED, "null can only be compared with = or !=")
            self.params.append(value)
            if op == "!=":
                # Salesforce's != also matches null values.
                return f"({sql} IS NULL OR {sql}{nocase} != ?)"
            return f"{sql}{nocase} {op} ?"
        negate = False
        if tok.kind == "ident" and tok.word == "not":
            negate = True
            tok = self.next()
        if tok.kind == "ident" and tok.word == "in":
            if not self.punct("("):
                raise SoqlError(MALFORMED, "expecting '(' after IN")
            values: list[Any] = []
            while True:
                values.append(self._value(f))
                if not self.punct(","):
                    break
            if not self.punct(")"):
                raise SoqlError(MALFORMED, "expecting ')' to close IN")
            non_null = [v for v in values if v is not None]
            marks = ", ".join("?" for _ in non_null)
            self.params.extend(non_null)
            has_null = len(non_null) != len(values)
            if negate:
                clause = f"({sql} IS NULL OR {sql}{nocase} NOT IN ({marks}))" if non_null else "1"
                return f"({clause} AND {sql} IS NOT NULL)" if has_null else clause
            clause = f"{sql}{nocase} IN ({marks})" if non_null else "0"
            return f"({clause} OR {sql} IS NULL)" if has_null else clause
        if tok.kind == "ident" and tok.word == "like" and not negate:
            value = self._value(f)
            if not isinstance(value, str):
                raise SoqlError(MALFORMED, "LIKE needs a string value")
            self.params.append(value)
            return f"{sql} LIKE ?"
        raise SoqlError(MALFORMED, f"unexpected token: '{tok.text}'")

    def _value(self, f: Field) -> Any:
        tok = self.next()
        ftype = f.type
        if tok.kind == "ident" and tok.word == "null":
            return None
        if ftype == "boolean":
            if tok.kind == "ident" and tok.word in ("true", "false"):
                return 1 if tok.word == "true" else 0
            raise self._type_error(f, "boolean")
        if ftype == "datetime":
            if tok.kind == "datetime":
                return sf_datetime(parse_datetime_literal(tok.text))
            day = self._date_fn(tok)
            if day is not None:
                return sf_datetime(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))
            raise self._type_error(f, "dateTime")
        if ftype == "date":
            if tok.kind == "date":
                return tok.text
            day = self._date_fn(tok)
            if day is not None:
                return day.isoformat()
            raise self._type_error(f, "date")
        if ftype in NUMBER_TYPES:
            if tok.kind == "number":
                return float(tok.text) if "." in tok.text else int(tok.text)
            raise self._type_error(f, "number")
        if tok.kind != "string":
            raise SoqlError(
                MALFORMED,
                f"value of filter criterion for field '{f.name}' must be of type string and "
                "should be enclosed in quotes",
            )
        text = re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if ftype in ("id", "reference"):
            text = to18(text)
        return text

    def _date_fn(self, tok: Tok) -> dt.date | None:
        if tok.kind == "ident" and tok.word in _DATE_WORDS:
            offset = {"today": 0, "yesterday": -1, "tomorrow": 1}[tok.word]
            return self.today + dt.timedelta(days=offset)
        if tok.kind == "datefn":
            name, _, n = tok.text.partition(":")
            if name.upper() in ("LAST_N_DAYS", "N_DAYS_AGO"):
                return self.today - dt.timedelta(days=int(n))
        return None

    @staticmethod
    def _type_error(f: Field, kind: str) -> SoqlError:
        return SoqlError(
            INVALID_FIELD,
            f"value of filter criterion for field '{f.name}' must be of type {kind} and "
            "should not be enclosed in quotes",
        )


def parse(soql: str, objects: dict[str, ObjectDef], today: dt.date) -> Query:
    """Parse and type-check ``soql`` against ``objects``; raise SoqlError when Salesforce would."""
    return _Parser(soql, objects, today).parse()


def from_sql(
    query: Query, table: str, parent_table: dict[str, str], *, include_deleted: bool
) -> str:
    """The ``FROM ... JOIN ... WHERE ...`` part of the compiled SQL (no ORDER BY/LIMIT)."""
    sql = f"FROM {table} t"
    for rel_name, (rel, _parent) in query.joins.items():
        alias = quote("j_" + rel_name)
        sql += f' LEFT JOIN {parent_table[rel_name]} {alias} ON {alias}."Id" = t.{quote(rel.name)}'
    conds = []
    if not include_deleted:
        conds.append('t."IsDeleted" = 0')
    if query.where_sql:
        conds.append(query.where_sql)
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    return sql
