"""Rule conditions as data: a small SQL-expression parser with an allow-list.

A rules file is data (invariant 9): a ``when:`` condition or a score ``value:`` may name
features, literals, operators and a fixed list of pure functions, and nothing else. Polars' SQL
parser accepts far more -- subqueries, table functions such as ``read_csv('http://...')`` or
``read_json('/etc/passwd')`` that run *while it parses* -- so the text never reaches polars as
written. It is tokenised and parsed here into a syntax tree; every node is checked against the
allow-list below; only the tree, rendered back as fully parenthesised SQL, is handed to polars.
Whatever the admin wrote, polars only ever sees what this module produced.

Allowed (the grammar RULES.md documents)::

    expr       := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | predicate
    predicate  := sum [ cmp sum
                      | ["NOT"] "IN" "(" expr ("," expr)* ")"
                      | ["NOT"] "BETWEEN" sum "AND" sum
                      | ["NOT"] ("LIKE" | "ILIKE") sum
                      | "IS" ["NOT"] ("NULL" | "TRUE" | "FALSE") ]
    sum        := product (("+" | "-" | "||") product)*
    product    := unary (("*" | "/" | "%") unary)*
    unary      := ("-" | "+") unary | primary
    primary    := number | 'text' | TRUE | FALSE | NULL | DATE 'yyyy-mm-dd'
                | TIMESTAMP 'yyyy-mm-dd hh:mm:ss' | feature | "feature"
                | FUNCTION "(" [expr ("," expr)*] ")" | "(" expr ")"
                | CASE (WHEN expr THEN expr)+ [ELSE expr] END
    cmp        := = | == | <> | != | < | <= | > | >=

Anything else -- a subquery, ``EXISTS``, a qualified ``table.column`` name, a function outside
:data:`FUNCTIONS`, a ``;`` or a comment -- is refused with one line naming the construct. Error
texts quote only the rules text itself, never anything read from elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The pure functions a condition or score may call (name -> allowed argument counts).
FUNCTIONS: dict[str, tuple[int, ...]] = {
    "COALESCE": tuple(range(1, 17)),
    "NULLIF": (2,),
    "ABS": (1,),
    "SIGN": (1,),
    "ROUND": (1, 2),
    "FLOOR": (1,),
    "CEIL": (1,),
    "SQRT": (1,),
    "POWER": (2,),
    "LN": (1,),
    "MOD": (2,),
    "GREATEST": tuple(range(1, 17)),
    "LEAST": tuple(range(1, 17)),
    "LOWER": (1,),
    "UPPER": (1,),
    "LENGTH": (1,),
    "TRIM": (1,),
    "LTRIM": (1,),
    "RTRIM": (1,),
    "STARTS_WITH": (2,),
    "ENDS_WITH": (2,),
}

#: SQL words that start constructs a rule may not use; named in the refusal.
_FORBIDDEN_WORDS = {
    "SELECT": "a subquery",
    "EXISTS": "a subquery",
    "FROM": "a table",
    "WITH": "a subquery",
    "UNION": "a subquery",
    "JOIN": "a table",
    "TABLE": "a table",
    "VALUES": "a subquery",
    "INTERVAL": "an interval (use the *_days features)",
    "CAST": "a cast",
    "TRY_CAST": "a cast",
}

_KEYWORDS = {
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "LIKE",
    "ILIKE",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "DATE",
    "TIMESTAMP",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
}

_CMP = {"=", "==", "<>", "!=", "<", "<=", ">", ">="}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--|/\*|\#)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"[^"]*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|<>|!=|==|\|\||[-+*/%=<>(),.])
    """,
    re.VERBOSE,
)
_QUOTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?$")


class PredicateError(ValueError):
    """The text is not a condition this language allows; the message names the construct."""


@dataclass(frozen=True)
class Token:
    """One lexical token: its kind, its text and where it starts (0-based column)."""

    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; anything unknown (``;``, comments, ``[``) is refused.

    Raises:
        PredicateError: naming the character or construct and its column.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None and text[pos] in "'\"":
            msg = f"syntax error: unterminated quote at column {pos + 1}"
            raise PredicateError(msg)
        if m is None:
            msg = f"'{text[pos]}' (column {pos + 1}) is not allowed in a condition"
            raise PredicateError(msg)
        kind = m.lastgroup or ""
        if kind == "comment":
            msg = f"a comment ('{m.group()}', column {pos + 1}) is not allowed inside a condition"
            raise PredicateError(msg)
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens; ``render`` builds the parenthesised SQL as it goes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.names: set[str] = set()

    # -- token helpers -------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, ahead: int = 0) -> str:
        tok = self.peek(ahead)
        return tok.text.upper() if tok is not None and tok.kind == "word" else ""

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.text in ops

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            msg = "syntax error: the condition ends too early"
            raise PredicateError(msg)
        self.i += 1
        return tok

    def expect_op(self, op: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.text != op:
            raise self.unexpected(tok, f"expected '{op}'")

    def expect_word(self, word: str) -> None:
        tok = self.take()
        if tok.kind != "word" or tok.text.upper() != word:
            raise self.unexpected(tok, f"expected {word}")

    def unexpected(self, tok: Token, hint: str = "") -> PredicateError:
        if tok.kind == "word" and tok.text.upper() in _FORBIDDEN_WORDS:
            return _forbidden(tok)
        where = f"(column {tok.pos + 1})"
        tail = f"; {hint}" if hint else ""
        return PredicateError(f"syntax error: unexpected '{tok.text}' {where}{tail}")

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> str:
        if not self.tokens:
            msg = "the expression is empty"
            raise PredicateError(msg)
        out = self.expr()
        tok = self.peek()
        if tok is not None:
            raise self.unexpected(tok)
        return out

    def expr(self) -> str:
        out = self.conj()
        while self.word() == "OR":
            self.take()
            out = f"({out} OR {self.conj()})"
        return out

    def conj(self) -> str:
        out = self.negation()
        while self.word() == "AND":
            self.take()
            out = f"({out} AND {self.negation()})"
        return out

    def negation(self) -> str:
        if self.word() == "NOT":
            self.take()
            return f"(NOT {self.negation()})"
        return self.predicate()

    def predicate(self) -> str:
        left = self.sum()
        negated = ""
        if self.word() == "NOT" and self.word(1) in ("IN", "BETWEEN", "LIKE", "ILIKE"):
            self.take()
            negated = "NOT "
        word = self.word()
        if self.at_op(*_CMP) and not negated:
            op = self.take().text
            op = "=" if op == "==" else op
            return f"({left} {op} {self.sum()})"
        if word == "IN":
            self.take()
            self.expect_op("(")
            if self.word() in _FORBIDDEN_WORDS:
                raise _forbidden(self.take())
            items = [self.expr()]
            while self.at_op(","):
                self.take()
                items.append(self.expr())
            self.expect_op(")")
            return f"({left} {negated}IN ({', '.join(items)}))"
        if word == "BETWEEN":
            self.take()
            low = self.sum()
            self.expect_word("AND")
            high = self.sum()
            return f"({left} {negated}BETWEEN {low} AND {high})"
        if word in ("LIKE", "ILIKE"):
            self.take()
            return f"({left} {negated}{word} {self.sum()})"
        if word == "IS" and not negated:
            self.take()
            is_not = ""
            if self.word() == "NOT":
                self.take()
                is_not = "NOT "
            tok = self.take()
            what = tok.text.upper() if tok.kind == "word" else ""
            if what not in ("NULL", "TRUE", "FALSE"):
                raise self.unexpected(tok, "expected NULL, TRUE or FALSE after IS")
            return f"({left} IS {is_not}{what})"
        return left

    def sum(self) -> str:
        out = self.product()
        while self.at_op("+", "-", "||"):
            op = self.take().text
            out = f"({out} {op} {self.product()})"
        return out

    def product(self) -> str:
        out = self.unary()
        while self.at_op("*", "/", "%"):
            op = self.take().text
            out = f"({out} {op} {self.unary()})"
        return out

    def unary(self) -> str:
        if self.at_op("-", "+"):
            op = self.take().text
            return f"({op}{self.unary()})"
        return self.primary()

    def primary(self) -> str:
        tok = self.take()
        if tok.kind == "number":
            return tok.text
        if tok.kind == "string":
            return tok.text
        if tok.kind == "quoted":
            return self.name(tok, tok.text[1:-1])
        if tok.kind == "op":
            if tok.text == "(":
                if self.word() in _FORBIDDEN_WORDS:
                    raise _forbidden(self.take())
                inner = self.expr()
                self.expect_op(")")
                return inner
            raise self.unexpected(tok)
        upper = tok.text.upper()
        if upper in _FORBIDDEN_WORDS:
            raise _forbidden(tok)
        if upper in ("NULL", "TRUE", "FALSE"):
            return upper
        if upper in ("DATE", "TIMESTAMP"):
            return self.typed_literal(tok, upper)
        if upper == "CASE":
            return self.case()
        if self.at_op("("):
            return self.call(tok)
        if upper in _KEYWORDS:
            raise self.unexpected(tok)
        return self.name(tok, tok.text)

    def name(self, tok: Token, name: str) -> str:
        if self.at_op("."):
            nxt = self.peek(1)
            qualified = f"{tok.text}.{nxt.text if nxt is not None else ''}"
            msg = (
                f"'{qualified}' is not allowed: a condition names features, not tables or "
                "their columns"
            )
            raise PredicateError(msg)
        if tok.kind == "quoted" and not _QUOTED_NAME.match(name):
            msg = f"{tok.text} (column {tok.pos + 1}) is not a feature name"
            raise PredicateError(msg)
        self.names.add(name)
        return f'"{name}"' if tok.kind == "quoted" else name

    def typed_literal(self, tok: Token, kind: str) -> str:
        lit = self.peek()
        if lit is None or lit.kind != "string":
            raise self.unexpected(
                lit or tok, f"{kind} takes a quoted value, e.g. {kind} '2026-01-01'"
            )
        self.take()
        pattern = _DATE if kind == "DATE" else _TIMESTAMP
        if not pattern.match(lit.text[1:-1]):
            msg = f"{kind} {lit.text} (column {tok.pos + 1}) is not a valid {kind.lower()}"
            raise PredicateError(msg)
        return f"{kind} {lit.text}"

    def call(self, tok: Token) -> str:
        fname = tok.text.upper()
        if fname not in FUNCTIONS:
            allowed = ", ".join(sorted(FUNCTIONS))
            msg = (
                f"function '{tok.text}(...)' (column {tok.pos + 1}) is not allowed; "
                f"a condition may call only {allowed}"
            )
            raise PredicateError(msg)
        self.expect_op("(")
        args: list[str] = []
        if not self.at_op(")"):
            if self.word() in _FORBIDDEN_WORDS:
                raise _forbidden(self.take())
            args.append(self.expr())
            while self.at_op(","):
                self.take()
                args.append(self.expr())
        self.expect_op(")")
        if len(args) not in FUNCTIONS[fname]:
            counts = "/".join(str(n) for n in FUNCTIONS[fname][:3])
            more = " or more" if len(FUNCTIONS[fname]) > 3 else ""
            msg = f"{fname} takes {counts}{more} argument(s), got {len(args)}"
            raise PredicateError(msg)
        return f"{fname}({', '.join(args)})"

    def case(self) -> str:
        parts = ["CASE"]
        if self.word() != "WHEN":
            raise self.unexpected(self.take(), "expected WHEN")
        while self.word() == "WHEN":
            self.take()
            cond = self.expr()
            self.expect_word("THEN")
            parts.append(f"WHEN {cond} THEN {self.expr()}")
        if self.word() == "ELSE":
            self.take()
            parts.append(f"ELSE {self.expr()}")
        self.expect_word("END")
        parts.append("END")
        return f"({' '.join(parts)})"


def _forbidden(tok: Token) -> PredicateError:
    what = _FORBIDDEN_WORDS[tok.text.upper()]
    return PredicateError(
        f"'{tok.text.upper()}' (column {tok.pos + 1}) is not allowed: {what} cannot be used in a "
        "rules file, which may only name features, literals, operators and pure functions"
    )


@dataclass(frozen=True)
class Predicate:
    """A checked condition: the SQL handed to polars and the feature names it uses."""

    sql: str
    names: frozenset[str]


def parse_predicate(text: str) -> Predicate:
    """Parse ``text``, check every construct against the allow-list and render it.

    Args:
        text: a ``when:`` condition or a score ``value:`` as written in the rules file.

    Returns:
        The fully parenthesised SQL built from the syntax tree (the only text polars sees)
        and the feature names it mentions.

    Raises:
        PredicateError: one line naming the construct that is not allowed, or the syntax error.
    """
    parser = _Parser(text)
    sql = parser.parse()
    return Predicate(sql=sql, names=frozenset(parser.names))
