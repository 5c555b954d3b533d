"""Query result sets: a snapshot of the matching rows, served page by page as JSON or CSV.

A query's matching rowids are written, in result order, to a scratch table once (what
Salesforce calls a query cursor); a page is then a range of that table joined back to the
object's table. SQLite builds each page's JSON (``json_object``) or CSV cells itself, so
serving costs a few microseconds a record and never holds a whole result in Python.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from typing import Any

from sandbox.schema import BOOLEAN_TYPES
from sandbox.soql import Column, Query, from_sql
from sandbox.store import SALESFORCE, SandboxStore, quote

#: SQLite allows 127 arguments a function; json_object takes two per field.
_MAX_JSON_FIELDS = 60
#: Render pages in SQL (fast) or record by record in Python (the baseline ``bench`` compares).
RENDER_IN_SQL = True
_ids = itertools.count(1)


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class ResultSet:
    """The snapshot of one query's matching rows, in order."""

    def __init__(
        self, store: SandboxStore, query: Query, *, include_deleted: bool, version: str
    ) -> None:
        self.store = store
        self.query = query
        self.version = version
        self.table = quote(f"_result_{next(_ids)}")
        obj_table = store.table(SALESFORCE, query.obj.name)
        parents = {
            rel: store.table(SALESFORCE, parent.name) for rel, (_f, parent) in query.joins.items()
        }
        from_part = from_sql(query, obj_table, parents, include_deleted=include_deleted)
        sql = f"SELECT t.rowid {from_part} ORDER BY {query.order_sql or 't.rowid'}"
        if query.limit is not None or query.offset:
            limit = query.limit if query.limit is not None else -1
            sql += f" LIMIT {limit} OFFSET {query.offset}"
        with store.lock:
            store.conn.execute(f"CREATE TABLE {self.table} (rid INTEGER)")
            store.conn.execute(f"INSERT INTO {self.table} (rid) {sql}", query.params)
            self.total = int(store.conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])
        self._joins = ""
        for rel_name, (ref, parent) in query.joins.items():
            alias = quote("j_" + rel_name)
            self._joins += (
                f" LEFT JOIN {store.table(SALESFORCE, parent.name)} {alias} "
                f'ON {alias}."Id" = t.{quote(ref.name)}'
            )
        self._from = f"FROM {self.table} r JOIN {obj_table} t ON t.rowid = r.rid{self._joins}"

    # -- JSON (REST query) -------------------------------------------------------------------
    def _col(self, col: Column) -> str:
        if col.relation is None:
            return "t." + quote(col.field.name)
        assert col.relation.relationship_name is not None
        return quote("j_" + col.relation.relationship_name) + "." + quote(col.field.name)

    def _json_value(self, col: Column) -> str:
        expr = self._col(col)
        if col.field.type in BOOLEAN_TYPES:
            return (
                f"json(CASE WHEN {expr} IS NULL THEN 'null' WHEN {expr} THEN 'true' "
                "ELSE 'false' END)"
            )
        return expr

    def _json_sql(self) -> str:
        prefix = f"/services/data/v{self.version}/sobjects/"
        obj = self.query.obj.name
        parts = [
            "'attributes'",
            f"json_object('type', {_sql_str(obj)}, 'url', {_sql_str(prefix + obj + '/')} "
            '|| t."Id")',
        ]
        done: set[str] = set()
        for col in self.query.columns:
            if col.relation is None:
                parts += [_sql_str(col.path), self._json_value(col)]
                continue
            rel = col.relation.relationship_name
            assert rel is not None
            assert col.parent is not None
            if rel in done:
                continue
            done.add(rel)
            alias = quote("j_" + rel)
            inner = [
                "'attributes'",
                f"json_object('type', {_sql_str(col.parent.name)}, 'url', "
                f'{_sql_str(prefix + col.parent.name + "/")} || {alias}."Id")',
            ]
            for sub in self.query.columns:
                if sub.relation is not None and sub.relation.relationship_name == rel:
                    inner += [_sql_str(sub.field.name), self._json_value(sub)]
            parts += [
                _sql_str(rel),
                f"json(CASE WHEN {alias}.\"Id\" IS NULL THEN 'null' "
                f"ELSE json_object({', '.join(inner)}) END)",
            ]
        return f"json_object({', '.join(parts)})"

    def page_json(self, start: int, end: int) -> list[str]:
        """Records ``start`` (0-based) to ``end`` (exclusive), each as a JSON text."""
        if len(self.query.columns) > _MAX_JSON_FIELDS or not RENDER_IN_SQL:
            return self._page_json_python(start, end)
        sql = (
            f"SELECT {self._json_sql()} {self._from} "
            "WHERE r.rowid > ? AND r.rowid <= ? ORDER BY r.rowid"
        )
        with self.store.lock:
            return [row[0] for row in self.store.conn.execute(sql, (start, end))]

    def _page_json_python(self, start: int, end: int) -> list[str]:
        """The same records built in Python (queries selecting very many fields)."""
        prefix = f"/services/data/v{self.version}/sobjects/"
        obj = self.query.obj.name
        cols = ['t."Id"'] + [self._col(c) for c in self.query.columns]
        parent_ids = {rel: f'{quote("j_" + rel)}."Id"' for rel in self.query.joins}
        cols += list(parent_ids.values())
        sql = (
            f"SELECT {', '.join(cols)} {self._from} "
            "WHERE r.rowid > ? AND r.rowid <= ? ORDER BY r.rowid"
        )
        with self.store.lock:
            rows = self.store.conn.execute(sql, (start, end)).fetchall()
        n = len(self.query.columns)
        rel_pos = {rel: 1 + n + i for i, rel in enumerate(parent_ids)}
        out = []
        for row in rows:
            rec: dict[str, Any] = {"attributes": {"type": obj, "url": prefix + obj + "/" + row[0]}}
            for col, value in zip(self.query.columns, row[1 : 1 + n], strict=True):
                if col.field.type in BOOLEAN_TYPES and value is not None:
                    value = bool(value)
                if col.relation is None:
                    rec[col.path] = value
                    continue
                rel = col.relation.relationship_name
                assert rel is not None
                assert col.parent is not None
                parent_id = row[rel_pos[rel]]
                if parent_id is None:
                    rec[rel] = None
                    continue
                sub = rec.setdefault(
                    rel,
                    {
                        "attributes": {
                            "type": col.parent.name,
                            "url": prefix + col.parent.name + "/" + parent_id,
                        }
                    },
                )
                sub[col.field.name] = value
            out.append(json.dumps(rec, separators=(",", ":")))
        return out

    # -- CSV (Bulk API 2.0) ---------------------------------------------------------------------
    def _csv_value(self, col: Column) -> str:
        expr = self._col(col)
        if col.field.type in BOOLEAN_TYPES:
            return f"CASE WHEN {expr} IS NULL THEN '' WHEN {expr} THEN 'true' ELSE 'false' END"
        if col.field.type == "datetime":
            return f"COALESCE(replace({expr}, '+0000', 'Z'), '')"
        return f"COALESCE({expr}, '')"

    def page_csv(self, start: int, end: int) -> tuple[bytes, int]:
        """Records ``start`` to ``end`` as Bulk API 2.0 CSV (header first) and their count."""
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([c.path for c in self.query.columns])
        count = max(0, min(end, self.total) - start)
        if not RENDER_IN_SQL:
            writer.writerows(self._page_csv_python(start, end))
            return buf.getvalue().encode(), count
        sql = (
            f"SELECT {', '.join(self._csv_value(c) for c in self.query.columns)} {self._from} "
            "WHERE r.rowid > ? AND r.rowid <= ? ORDER BY r.rowid"
        )
        with self.store.lock:
            writer.writerows(self.store.conn.execute(sql, (start, end)))
        return buf.getvalue().encode(), count

    def _page_csv_python(self, start: int, end: int) -> list[list[str]]:
        cols = ", ".join(self._col(c) for c in self.query.columns)
        sql = f"SELECT {cols} {self._from} WHERE r.rowid > ? AND r.rowid <= ? ORDER BY r.rowid"
        with self.store.lock:
            rows = self.store.conn.execute(sql, (start, end)).fetchall()
        kinds = [c.field.type for c in self.query.columns]
        out = []
        for row in rows:
            cells = []
            for kind, value in zip(kinds, row, strict=True):
                if value is None:
                    cells.append("")
                elif kind in BOOLEAN_TYPES:
                    cells.append("true" if value else "false")
                elif kind == "datetime":
                    cells.append(str(value).replace("+0000", "Z"))
                else:
                    cells.append(str(value))
            out.append(cells)
        return out

    def drop(self) -> None:
        """Free the snapshot."""
        with self.store.lock:
            self.store.conn.execute(f"DROP TABLE IF EXISTS {self.table}")
