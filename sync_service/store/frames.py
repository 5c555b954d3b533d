"""A query's result becomes a polars DataFrame: one text built by the database, parsed by polars.

:func:`read_frame` is how the evaluation reads the store (see its docstring for why one text
per query, and how a value holding a separator is read again as quoted CSV);
:func:`cast_column` turns a column read as text (or as the driver's type) into the polars type
wanted. Nothing here knows what the query is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection


def cast_column(col: pl.Expr, have: pl.DataType, want: pl.DataType) -> pl.Expr:
    """``col`` (of polars type ``have``) as ``want``; a value that does not convert is null."""
    if have == want:
        return col
    if want == pl.Boolean:
        if have == pl.String:  # PostgreSQL CSV 't'/'f', JSON 'true'/'false'
            truthy = col.str.to_lowercase().is_in(["t", "true", "1", "yes"])
            return pl.when(col.is_null()).then(None).otherwise(truthy)
        return col.cast(pl.Int64, strict=False).cast(pl.Boolean)
    if want == pl.Date and have == pl.String:
        return col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    return col.cast(want, strict=False)


_PLAIN_TEXT = (sa.Integer, sa.Float, sa.Numeric, sa.Boolean, sa.Date, sa.DateTime)


def _may_need_quotes(t: Any) -> bool:
    """Whether a value of SQL type ``t`` may hold a comma, a quote or an empty string."""
    if isinstance(t, sa.TypeDecorator):
        t = t.impl_instance
    return not isinstance(t, _PLAIN_TEXT)


def read_frame(
    conn: Connection, stmt: sa.Select[Any], types: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """Run ``stmt`` and return its rows as a polars frame typed by ``types``.

    Args:
        conn: the connection (SQLite or PostgreSQL) to read through.
        stmt: the query; each name of ``types`` must be one of its selected column labels.
        types: the frame's columns, in order, with their polars types.

    The database writes the whole result as one text, which polars parses: one Python object
    per query instead of a tuple per row and an object per value, and the text is built with
    the GIL released, so that readers in threads run side by side (a cursor's rows hold it).
    (COPY TO STDOUT would hand psycopg a message per row: 3.5x the client CPU.)

    Fields and rows are separated by ASCII's unit and record separators and NULL is written
    as its group separator: no escaping, the cheapest text for the database to build. A value
    holding one of them shows as a wrong field or row count, and then the query is read again
    as quoted CSV. (Only a value that is exactly the group separator reads as NULL.)
    """
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    # the driver gets the values SQLAlchemy would send (e.g. a JSON path '$."key"' on SQLite)
    for key, process in compiled._bind_processors.items():
        if key in params and params[key] is not None and callable(process):
            params[key] = process(params[key])
    names = list(types)
    frame = _read_text(conn, compiled, params, stmt, names, quoted=False)
    if frame is None:
        frame = _read_text(conn, compiled, params, stmt, names, quoted=True)
        assert frame is not None
    return frame.select([cast_column(pl.col(n), frame.schema[n], types[n]).alias(n) for n in names])


_FIELD, _ROW, _NULL = "\x1f", "\x1e", "\x1d"  # ASCII unit, record and group separators
#: Fields of one format() call on SQLite: its functions take at most 127 arguments by default.
_SQLITE_FORMAT_ARGS = 100


def _read_text(
    conn: Connection,
    compiled: Any,
    params: Mapping[str, Any],
    stmt: sa.Select[Any],
    names: list[str],
    *,
    quoted: bool,
) -> pl.DataFrame | None:
    """One query's rows as strings, through one text; None when the plain text is ambiguous."""
    pg = conn.dialect.name == "postgresql"
    as_text = "::text" if pg else ""
    if quoted:  # CSV: a text quoted (its quotes doubled), NULL an empty field
        quote, sep, eol = ('"' if pg else "'"), ",", "\n"
        cells = " || ',' || ".join(
            (
                f"""coalesce('"' || replace(q."{n}"::text, '"', '""') || '"', '')"""
                if pg  # SQLite's quote() quotes a text by ', and leaves a number bare
                else f"""CASE WHEN q."{n}" IS NULL THEN '' ELSE quote(q."{n}") END"""
            )
            if _may_need_quotes(stmt.selected_columns[n].type)
            else f"""coalesce(q."{n}"{as_text}, '')"""
            for n in names
        )
        # a last constant field, so that no line is ever empty (polars would skip it)
        row_text = f"{cells} || ',.'"
    else:
        # the separators are written into the SQL as they are: a literal costs the database
        # less per row than a chr() call (12-15% of the query)
        quote, sep, eol = None, _FIELD, _ROW
        fields = [f"""coalesce(q."{n}"{as_text}, '{_NULL}')""" for n in names]
        if not pg and len(fields) <= _SQLITE_FORMAT_ARGS:
            # one format() call builds the row: a third less time than a || per field, each
            # of which copies the row so far (SQLite; the values are arguments, never format)
            spec = _FIELD.join("%s" for _ in fields)
            row_text = f"format('{spec}{_FIELD}.', {', '.join(fields)})"
        else:
            row_text = f" || '{_FIELD}' || ".join(fields) + f" || '{_FIELD}.'"
    agg = "string_agg" if pg else "group_concat"
    sql = f"SELECT {agg}({row_text}, '{eol}'), count(*) FROM ({compiled}) AS q"
    dbapi = conn.connection.driver_connection
    if pg:
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            cur.execute(sql, params)
            text, count = cur.fetchone()
    else:
        cur = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(sql, [params[k] for k in compiled.positiontup or []])
            text, count = cur.fetchone()
        finally:
            cur.close()
    if not text:
        return pl.DataFrame(schema={n: pl.String() for n in names})
    try:
        frame = pl.read_csv(
            text.encode(),
            has_header=False,
            new_columns=[*names, "_end"],
            infer_schema=False,
            separator=sep,
            eol_char=eol,
            quote_char=quote,
            null_values=None if quoted else _NULL,
            # plain text: an empty field is '' (NULL is the group separator); CSV: NULL
            empty_string_is_null=quoted,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        if quoted:
            raise
        return None  # a separator inside a value
    if not quoted and frame.height != count:
        return None  # a record separator inside a value
    return frame.drop("_end")
