"""Gainsight streams: one object read incrementally with the query API, in bounded batches.

Paging. The query API pages with ``limit``/``offset`` over an ``orderBy``. Plain offset paging
drifts when rows move while we read, and large offsets get slow; so each page is ordered by
``(ModifiedDate, Gsid)`` and, as the read advances, the query's lower bound is *rebased* to the
(whole-second) timestamp of the last row read, with ``offset`` = the rows already read at that
second. Offsets therefore stay small (only ties at one second), and a row modified during the
read leaves the window (its new timestamp is past ``until``) without shifting earlier pages.

Watermark rules (from :mod:`connectors.base`): records strictly after the given cursor
``(ts, id)`` and with ``ts <= until`` are yielded, ordered by both; each batch carries the
cursor of its last record. Rows the server returns at the edges (whole-second filter values)
are dropped here, not by the server.

Malformed rows are never dropped silently: a row that is not an object, or lacks a readable
id or modified date, is passed through with ``record[INVALID_KEY]`` saying why, so the ingest
quarantines it (the mapping's ``to_row`` rejects it) and counts it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import INVALID_KEY, Batch, Cursor, Stream, StreamSpec
from connectors.gainsight.client import GainsightClient
from connectors.gainsight.errors import extract_records
from connectors.gainsight.query import (
    Conditions,
    check_object,
    floor_second,
    incremental_conditions,
    parse_datetime,
    query_body,
)

log = logging.getLogger(__name__)

#: Key holding the raw value of a row that was not even a JSON object.
RAW_KEY = "_raw"

#: Salesforce-flavoured defaults of :class:`StreamSpec` and their Gainsight counterparts:
#: a spec that left them untouched means Gainsight's own id and modified-date fields.
_DEFAULT_KEYS = {"Id": "Gsid", "SystemModstamp": "ModifiedDate"}


def query_path(object_name: str) -> str:
    """The Read API path of ``object_name``."""
    return f"/v1/data/objects/query/{check_object(object_name)}"


class GainsightStream(Stream):
    """Any Gainsight object the mapping names, read through ``/v1/data/objects/query``.

    Subclasses declare a known object; the generic class serves any other (custom objects,
    tenant-specific survey objects).
    """

    #: The Gainsight object this class is for (None: any).
    object_name: ClassVar[str | None] = None
    primary_key: ClassVar[str] = "Gsid"
    replication_key: ClassVar[str] = "ModifiedDate"

    def __init__(
        self,
        spec: StreamSpec,
        client: GainsightClient,
        *,
        page_size: int,
        lookback_seconds: int = 0,
    ) -> None:
        super().__init__(spec)
        check_object(spec.object_name)
        self.client = client
        self.page_size = page_size
        self.pk = _DEFAULT_KEYS.get(spec.primary_key, spec.primary_key) or self.primary_key
        rk = spec.replication_key
        self.rk: str | None = _DEFAULT_KEYS.get(rk, rk) if rk is not None else None
        self.lookback = timedelta(seconds=lookback_seconds)
        self.path = query_path(spec.object_name)
        self.what = f"query {spec.object_name}"
        #: Rows passed through as malformed, over this stream's life.
        self.invalid = 0

    @property
    def select(self) -> list[str]:
        """Fields asked for: the mapping's, plus the keys the stream itself needs."""
        keys = [self.pk] + ([self.rk] if self.rk else [])
        return list(dict.fromkeys([*keys, *self.spec.fields]))

    def _page(
        self,
        conditions: Conditions,
        order_by: list[str],
        offset: int,
        select: list[str] | None = None,
    ) -> list[Any]:
        body = query_body(
            select or self.select,
            conditions,
            order_by=order_by,
            limit=self.page_size,
            offset=offset,
        )
        payload = self.client.call("POST", self.path, what=self.what, json_body=body)
        return extract_records(payload, what=self.what)

    def _invalid(self, row: Any, reason: str) -> dict[str, Any]:
        self.invalid += 1
        log.warning(
            "gainsight %s: malformed row passed on for quarantine: %s", self.spec.name, reason
        )
        out = dict(row) if isinstance(row, dict) else {RAW_KEY: row}
        out[INVALID_KEY] = reason
        return out

    def read(self, since: Cursor | None, until: datetime) -> Iterator[Batch]:
        """Yield batches of records after ``since`` up to ``until`` (see the module doc)."""
        if self.rk is None:
            yield from self._read_full()
            return
        rk, pk = self.rk, self.pk
        lower = since.updated_at - self.lookback if since else None
        offset = 0
        # The whole second of the last row read, and how many rows of this query we have read
        # at that second: the next query restarts there with that offset.
        tail_second: datetime | None = None
        tail = 0
        while True:
            cond = incremental_conditions(rk, lower, until, self.spec.filters)
            rows = self._page(cond, [rk, pk], offset)
            out: list[dict[str, Any]] = []
            last: Cursor | None = None
            for row in rows:
                ts: datetime | None = None
                reason = None
                if not isinstance(row, dict):
                    reason = "row is not a JSON object"
                else:
                    try:
                        ts = parse_datetime(row.get(rk))
                    except (ValueError, OverflowError):
                        reason = f"{rk} is not a readable date-time"
                    if ts is None and reason is None:
                        reason = f"{rk} is missing"
                if ts is not None:
                    second = floor_second(ts)
                    if second == tail_second:
                        tail += 1
                    else:
                        tail_second, tail = second, 1
                else:
                    tail += 1  # it took a place in this query's order all the same
                if reason is not None:
                    out.append(self._invalid(row, reason))
                    continue
                assert ts is not None
                assert isinstance(row, dict)
                rid = row.get(pk)
                if rid is None or rid == "":
                    out.append(self._invalid(row, f"{pk} is missing"))
                    continue
                cur = Cursor(ts, str(rid))
                if (since is not None and cur <= since) or ts > until:
                    continue  # outside the exact window; the server filter is whole-second
                out.append(row)
                last = cur
            if out:
                yield Batch(out, cursor=last)
            if len(rows) < self.page_size:
                return
            # Rebase only forward: the lower bound strictly rises or the offset grows, so the
            # read ends even if the server's order were broken.
            if tail_second is not None and (lower is None or tail_second > floor_second(lower)):
                lower, offset = tail_second, tail
            else:
                offset += len(rows)

    def _read_full(self) -> Iterator[Batch]:
        """An object without a modified date: every row, by id, keyset-paged."""
        for ids_rows in self._keyset(self.select):
            out = [
                r
                if isinstance(r, dict) and r.get(self.pk)
                else self._invalid(r, f"{self.pk} is missing")
                for r in ids_rows
            ]
            if out:
                yield Batch(out)

    def _keyset(self, select: list[str]) -> Iterator[list[Any]]:
        last_id: str | None = None
        while True:
            cond = Conditions.empty()
            if last_id is not None:
                cond.add(self.pk, "GT", [last_id])
            for flt in self.spec.filters:
                cond.add_filter(flt)
            rows = self._page(cond, [self.pk], 0, select)
            if rows:
                yield rows
            ids = [str(r[self.pk]) for r in rows if isinstance(r, dict) and r.get(self.pk)]
            if len(rows) < self.page_size or not ids:
                return
            last_id = ids[-1]  # the server's order, not Python's string order

    def ids(self) -> Iterator[list[str]]:
        """Yield batches of the ids of every live record (keyset paging on the id, no offset)."""
        for rows in self._keyset([self.pk]):
            batch = [str(r[self.pk]) for r in rows if isinstance(r, dict) and r.get(self.pk)]
            if batch:
                yield batch


class CompanyStream(GainsightStream):
    """Gainsight Company: health score, NPS, risk and payment fields, the SFDC account id."""

    object_name = "Company"


class PersonStream(GainsightStream):
    """Gainsight Person: email, name, consent when kept there, often the SFDC contact id."""

    object_name = "Person"


class CompanyPersonStream(GainsightStream):
    """Gainsight Company Person: a person's link to a company (role, title, primary)."""

    object_name = "Company_Person"


class SurveyAnswerStream(GainsightStream):
    """NPS survey answers (``SurveyUserAnswer`` or the tenant's name from the mapping)."""

    object_name = "SurveyUserAnswer"


#: Known objects and their stream classes; other objects get :class:`GainsightStream`.
STREAM_CLASSES: dict[str, type[GainsightStream]] = {
    cls.object_name: cls
    for cls in (CompanyStream, PersonStream, CompanyPersonStream, SurveyAnswerStream)
    if cls.object_name
}
