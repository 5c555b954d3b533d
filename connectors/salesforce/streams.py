"""SalesforceStream: one sObject read incrementally, by REST or by Bulk API 2.0.

A read first asks ``SELECT COUNT()`` for the rows between the cursor and ``until`` (or takes
the count, and the whole result when it fits one page, from the connector's Composite call
that asked every stream's read up front):

* up to ``bulk_query_threshold`` rows: REST ``queryAll`` ordered by (replication key, Id), at
  the largest page size (``Sforce-Query-Options: batchSize``), following ``nextRecordsUrl``.
  Each batch carries the cursor of its last record, so a crash resumes after the last
  committed batch.
* above it: a Bulk API 2.0 ``queryAll`` job, results fetched page by page with locators and
  parsed as they arrive. Bulk results are unordered (ORDER BY would disable PK chunking), so the
  cursor only moves on the final batch, to the greatest (replication key, Id) seen; earlier
  batches carry the starting cursor. A crash mid-job re-reads the job's rows next run, which
  upserts make harmless.

Either way records are plain dicts keyed by field API name with the same Python types (CSV
values are typed from describe: booleans, numbers, empty -> None), relationship fields
flattened to ``Account.Name``, and deleted or merged rows flagged with ``DELETED_KEY`` and
``MERGED_INTO_KEY``. Memory is bounded by the page and batch sizes, never by the object's size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import Operation

from canonical.errors import FatalApiError, RetriableError
from connectors.base import DELETED_KEY, MERGED_INTO_KEY, Batch, Cursor, Stream, StreamSpec
from connectors.salesforce import soql
from connectors.salesforce.csv_rows import parse_csv_page
from connectors.salesforce.describe import ObjectInfo
from connectors.salesforce.errors import SYSTEM, redact

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector

log = logging.getLogger(__name__)

IS_DELETED = "IsDeleted"
MASTER_RECORD_ID = "MasterRecordId"


def parse_timestamp(value: Any) -> datetime | None:
    """A Salesforce datetime (``2024-05-01T12:00:00.000+0000`` or ``...Z``) as aware UTC."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``attributes`` and flatten relationship objects to dotted keys (``Account.Name``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            for sub_key, sub_value in flatten(value).items():
                out[f"{key}.{sub_key}"] = sub_value
        else:
            out[key] = value
    return out


class SalesforceStream(Stream):
    """Reads one sObject (see the module docstring for the rules)."""

    def __init__(self, connector: SalesforceConnector, spec: StreamSpec) -> None:
        super().__init__(spec)
        self.connector = connector
        self.config = connector.config
        self._info: ObjectInfo | None = None
        #: How the last read or ids() went: "rest" or "bulk", and how many rows COUNT() saw.
        self.last_mode: str | None = None
        self.last_count: int | None = None

    # -- metadata -----------------------------------------------------------------------------

    def object_info(self) -> ObjectInfo:
        """Describe the object and check the mapped fields (once per stream)."""
        if self._info is None:
            self._info = self.connector.check_fields(self.spec)
        return self._info

    def select_fields(self) -> list[str]:
        """Fields a read asks for: keys, mapped fields, and the deletion markers the object has."""
        info = self.object_info()
        names = [self.spec.primary_key]
        if self.spec.replication_key:
            names.append(self.spec.replication_key)
        names.extend(self.spec.fields)
        names.extend(n for n in (IS_DELETED, MASTER_RECORD_ID) if info.has(n))
        return list(dict.fromkeys(names))

    # -- reading ------------------------------------------------------------------------------

    def count(self, since: Cursor | None, until: datetime | None, *, deleted: bool = True) -> int:
        """Rows a read would return (``COUNT()`` costs one API call, not a row each).

        A count the connector already asked in its plan (:meth:`~.connector.SalesforceConnector
        .plan_reads`, one Composite call for every stream) costs nothing here.
        """
        query = (
            soql.count_query(self.spec, since, until)
            if deleted
            else soql.ids_count_query(self.spec)
        )
        planned = self.connector.planned_count(query) if deleted else None
        if planned is not None:
            return planned
        result = self.connector.call(
            lambda sf: sf.query(query, include_deleted=deleted),
            what=f"count {self.spec.object_name}",
        )
        return int(result.get("totalSize", 0))

    def read(self, since: Cursor | None, until: datetime) -> Iterator[Batch]:
        """Yield batches of rows after ``since`` up to ``until`` (deleted rows included)."""
        # The mapped fields are checked first, so a mapping error is reported even when there
        # is nothing to read (a describe kept from an earlier run costs no call).
        fields = self.select_fields()
        total = self.count(since, until)
        self.last_count = total
        bulk = total > self.config.bulk_query_threshold
        self.last_mode = "bulk" if bulk else "rest"
        log.info(
            "reading %s: %d row(s) since %s via %s",
            self.spec.object_name,
            total,
            since.updated_at.isoformat() if since else "the beginning",
            self.last_mode,
        )
        if total == 0 or bulk:
            # a first page planned for nothing (no rows, or a Bulk read) is let go
            self.connector.planned_page(soql.read_query(self.spec, fields, since, until))
        if total == 0:
            return
        if bulk:
            yield from self._read_bulk(fields, since, until)
        else:
            yield from self._read_rest(fields, since, until)

    def ids(self) -> Iterator[list[str]]:
        """Yield batches of the ids of every live row matching the stream's filters."""
        pk = self.spec.primary_key
        total = self.count(None, None, deleted=False)
        bulk = total > self.config.bulk_query_threshold
        self.last_mode, self.last_count = ("bulk" if bulk else "rest"), total
        if total == 0:
            return
        if bulk:
            rows = self._bulk_rows(soql.ids_query(self.spec, ordered=False), Operation.query)
        else:
            rows = self._rest_rows(soql.ids_query(self.spec), include_deleted=False)
        ids: list[str] = []
        for row in rows:
            ids.append(str(row[pk]))
            if len(ids) >= self.config.batch_size:
                yield ids
                ids = []
        if ids:
            yield ids

    # -- REST ---------------------------------------------------------------------------------

    def _rest_rows(self, query: str, *, include_deleted: bool) -> Iterator[dict[str, Any]]:
        headers = {"Sforce-Query-Options": f"batchSize={self.config.query_batch_size}"}
        name = self.spec.object_name
        # a read planned in the Composite call whose answer held every row costs no call here
        planned = self.connector.planned_page(query) if include_deleted else None
        page = planned or self.connector.call(
            lambda sf: sf.query(query, include_deleted=include_deleted, headers=headers),
            what=f"query {name}",
        )
        # Without relationship paths a record has no nested object: drop ``attributes`` in place
        # (the hot path), else flatten ``Account.Name`` and friends.
        nested = "." in query.split(" FROM ", 1)[0]
        while True:
            if nested:
                yield from (flatten(raw) for raw in page.get("records", ()))
            else:
                for raw in page.get("records", ()):
                    raw.pop("attributes", None)
                    yield raw
            if page.get("done", True):
                return
            url = page.get("nextRecordsUrl")
            if not url:
                msg = f"Salesforce query on {name} answered done=false without nextRecordsUrl"
                raise FatalApiError(msg, system=SYSTEM)

            def more(sf: Salesforce, url: str = url) -> Any:
                # identifier_is_url=True: nextRecordsUrl is a path, not a query locator id.
                return sf.query_more(url, identifier_is_url=True, headers=headers)

            page = self.connector.call(more, what=f"query {name} (next page)")

    def _read_rest(
        self, fields: list[str], since: Cursor | None, until: datetime
    ) -> Iterator[Batch]:
        query = soql.read_query(self.spec, fields, since, until, ordered=True)
        batch: list[dict[str, Any]] = []
        for row in self._rest_rows(query, include_deleted=True):
            batch.append(self._finish(row, fields))
            if len(batch) >= self.config.batch_size:
                yield Batch(batch, self._cursor_of(batch[-1]) or since)
                batch = []
        if batch:
            yield Batch(batch, self._cursor_of(batch[-1]) or since)

    def _cursor_of(self, record: Mapping[str, Any]) -> Cursor | None:
        if not self.spec.replication_key:
            return None
        ts = parse_timestamp(record.get(self.spec.replication_key))
        if ts is None:
            return None
        return Cursor(ts, str(record.get(self.spec.primary_key) or ""))

    def _finish(self, row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        """Set the deletion markers; drop markers the mapping did not ask for."""
        deleted = row.get(IS_DELETED)
        row[DELETED_KEY] = deleted is True or (isinstance(deleted, str) and deleted == "true")
        master = row.get(MASTER_RECORD_ID)
        if master:
            row[MERGED_INTO_KEY] = master
        for marker in (IS_DELETED, MASTER_RECORD_ID):
            if marker not in self.spec.fields:
                row.pop(marker, None)
        return row

    # -- Bulk API 2.0 -------------------------------------------------------------------------

    def _bulk_client(self, sf: Salesforce) -> Any:
        # Built from the client of *this* call, so a renewed token reaches the bulk handler.
        return getattr(sf.bulk2, self.spec.object_name)._client

    def _bulk_rows(self, query: str, operation: Operation) -> Iterator[dict[str, Any]]:
        """Rows of a Bulk API 2.0 query job, typed from describe, one result page at a time."""
        name = self.spec.object_name
        job = self.connector.call(
            lambda sf: self._bulk_client(sf).create_job(operation, query=query),
            what=f"bulk query {name}",
        )
        job_id = str(job["id"])
        self._wait_for_job(job_id)
        info = self.object_info()

        def page_of(locator: str) -> Any:
            return self.connector.call(
                lambda sf: self._bulk_client(sf).get_query_results(
                    job_id, locator, self.config.bulk_page_size
                ),
                what=f"bulk results {name}",
            )

        # One page is fetched ahead while the caller parses and stores the current one, so the
        # server's time and ours overlap; memory holds at most two pages.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sf-bulk") as pool:
            ahead: Future[Any] | None = pool.submit(page_of, "")
            while ahead is not None:
                page = ahead.result()
                locator = str(page.get("locator") or "")
                ahead = pool.submit(page_of, locator) if locator and locator != "null" else None
                yield from parse_csv_page(page.get("records") or "", info)

    def _wait_for_job(self, job_id: str) -> None:
        name = self.spec.object_name
        deadline = time.monotonic() + self.config.bulk_job_timeout_seconds
        interval = self.config.bulk_poll_seconds
        while True:
            job = self.connector.call(
                lambda sf: self._bulk_client(sf).get_job(job_id, True),
                what=f"bulk job status {name}",
            )
            state = job.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                reason = redact(str(job.get("errorMessage") or state))
                msg = (
                    f"Salesforce bulk query job on {name} ended {state}: {reason} — check the "
                    "mapping's fields and filters"
                )
                raise FatalApiError(msg, system=SYSTEM, code=f"BULK_{str(state).upper()}")
            if time.monotonic() > deadline:
                msg = (
                    f"Salesforce bulk query job on {name} still {state} after "
                    f"{self.config.bulk_job_timeout_seconds:.0f}s: the run stops and retries later"
                )
                raise RetriableError(msg, system=SYSTEM)
            self.connector.sleep(interval)
            interval = min(interval * 2, self.config.bulk_poll_max)

    def _read_bulk(
        self, fields: list[str], since: Cursor | None, until: datetime
    ) -> Iterator[Batch]:
        query = soql.read_query(self.spec, fields, since, until, ordered=False)
        rk, pk = self.spec.replication_key, self.spec.primary_key
        drop = [m for m in (IS_DELETED, MASTER_RECORD_ID) if m not in self.spec.fields]
        # Bulk datetimes are fixed-width UTC text, so the greatest (text, id) is the latest.
        best: tuple[str, str] = ("", "")
        batch: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] | None = None
        for record in self._bulk_rows(query, Operation.query_all):
            record[DELETED_KEY] = record.get(IS_DELETED) is True
            master = record.get(MASTER_RECORD_ID)
            if master:
                record[MERGED_INTO_KEY] = master
            for marker in drop:
                record.pop(marker, None)
            if rk:
                key = (record.get(rk) or "", record.get(pk) or "")
                if key > best:
                    best = key
            batch.append(record)
            if len(batch) >= self.config.batch_size:
                # Hold one batch back so the final one (which moves the cursor) is never empty.
                if pending is not None:
                    yield Batch(pending, since)
                pending, batch = batch, []
        if pending is not None and batch:
            yield Batch(pending, since)
            pending = None
        final = batch or pending or []
        if final:
            yield Batch(final, self._final_cursor(since, best))

    def _final_cursor(self, since: Cursor | None, best: tuple[str, str]) -> Cursor | None:
        if not self.spec.replication_key:
            return None
        ts = parse_timestamp(best[0])
        if ts is None:
            return since
        cursor = Cursor(ts, best[1])
        return cursor if since is None or cursor > since else since
