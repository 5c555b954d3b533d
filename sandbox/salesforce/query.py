"""SOQL over REST: ``/query`` and ``/queryAll``, their cursors, and the runner Bulk shares.

A query's result is a snapshot (``ResultSet``) paged 2,000 records at a time (``batchSize``
in ``Sforce-Query-Options``: 200 to 2,000); ``nextRecordsUrl`` points at the next page of a
cursor. The newest ``MAX_CURSORS`` cursors stay readable.
"""

from __future__ import annotations

import re

from sandbox.http import Request, Response, json_response
from sandbox.ids import sf_id
from sandbox.results import ResultSet
from sandbox.salesforce.routes import Call
from sandbox.salesforce.state import MAX_CURSORS, Cursor, SalesforceState, errors
from sandbox.soql import Query, from_sql, parse
from sandbox.store import SALESFORCE


def run_soql(
    state: SalesforceState, soql: str, include_deleted: bool, version: str
) -> tuple[Query, ResultSet | int]:
    """Parse ``soql``; COUNT() queries give their count, others a result snapshot."""
    store = state.store
    query = parse(soql, state.objects, state.org.now.date())
    if query.count_only:
        table = store.table(SALESFORCE, query.obj.name)
        parents = {
            rel: store.table(SALESFORCE, parent.name) for rel, (_f, parent) in query.joins.items()
        }
        from_part = from_sql(query, table, parents, include_deleted=include_deleted)
        sql = f"SELECT COUNT(*) FROM (SELECT 1 {from_part}"
        if query.limit is not None:
            sql += f" LIMIT {query.limit}"
        sql += ")"
        return query, int(store.fetchone(sql, query.params)[0])
    return query, ResultSet(store, query, include_deleted=include_deleted, version=version)


def _batch_size(req: Request) -> int:
    opts = req.headers.get("sforce-query-options", "")
    m = re.search(r"batchSize\s*=\s*(\d+)", opts)
    if not m:
        return 2000
    return max(200, min(2000, int(m.group(1))))


class QueryResource:
    """``/query``, ``/queryAll`` and their cursors."""

    def __init__(self, state: SalesforceState) -> None:
        self.state = state

    def query(self, call: Call) -> Response:
        """``GET /query?q=``: the first page and a cursor for the rest."""
        return self._start(call, "query")

    def query_all(self, call: Call) -> Response:
        """``GET /queryAll?q=``: as ``query``, deleted records included."""
        return self._start(call, "queryAll")

    def _start(self, call: Call, endpoint: str) -> Response:
        soql = call.req.query.get("q")
        if not soql:
            return errors(400, "MALFORMED_QUERY", "A query string (q) is required")
        _query, result = run_soql(self.state, soql, endpoint == "queryAll", call.version)
        if isinstance(result, int):
            return json_response(200, {"totalSize": result, "done": True, "records": []})
        cursor = Cursor(result, call.version, endpoint)
        return self._page(cursor, 0, _batch_size(call.req), None)

    def query_more(self, call: Call) -> Response:
        """``GET /query/{cursor}-{offset}``: the next page of a cursor."""
        cursor_id, _, offset = call.params["locator"].partition("-")
        with self.state.lock:
            cursor = self.state.cursors.get(cursor_id)
        if cursor is None or not offset.isdigit():
            return errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, int(offset), _batch_size(call.req), cursor_id)

    def _page(self, cursor: Cursor, start: int, size: int, cursor_id: str | None) -> Response:
        st = self.state
        total = cursor.result.total
        end = min(total, start + size)
        head = f'{{"totalSize":{total},"done":{"true" if end >= total else "false"}'
        if end < total:
            if cursor_id is None:
                cursor_id = sf_id("01g", st.next_number())
                with st.lock:
                    st.cursors[cursor_id] = cursor
                    while len(st.cursors) > MAX_CURSORS:
                        _, old = st.cursors.popitem(last=False)
                        old.result.drop()
            url = f"/services/data/v{cursor.version}/{cursor.endpoint}/{cursor_id}-{end}"
            head += f',"nextRecordsUrl":"{url}"'
        records = cursor.result.page_json(start, end)
        if cursor_id is None and end >= total:
            # One page and no locator handed out: nothing can ask for it again. A cursor's
            # pages stay readable (a client may retry one) until newer cursors evict it.
            cursor.result.drop()
        body = head + ',"records":[' + ",".join(records) + "]}"
        return Response(200, body.encode())
