"""Writing field changes: sObject Collections for small writes, Bulk API 2.0 ingest for big ones.

* Up to ``bulk_write_threshold`` changes: ``PATCH composite/sobjects`` with at most 200 records a
  request and ``allOrNone=false``. Salesforce answers 200 with one ``{id, success, errors}`` per
  record, in request order: a 200 is not a success for every record.
* Above it: one Bulk API 2.0 ``update`` ingest job (CSV; ``#N/A`` clears a field), then its
  ``successfulResults`` / ``failedResults`` / ``unprocessedrecords``. The result lists are read
  for ``Failed`` and ``Aborted`` jobs too: Salesforce does not roll back what such a job already
  wrote, and lists what it never reached as unprocessed ("Understanding Bulk API 2.0 Ingest").

Results are data, never exceptions: one :class:`WriteResult` per change, with the Salesforce
code and an admin-readable message; ``UNABLE_TO_LOCK_ROW`` and request-level transient failures
are ``retryable``. Changes are sent grouped by parent account when the caller knows it, so the
records sharing a parent lock go together instead of contending across requests.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import Operation

from canonical.errors import ConnectorError, FatalApiError, MappingError, RetriableError
from connectors.base import RecordChange, WriteResult
from connectors.salesforce import soql
from connectors.salesforce.errors import SYSTEM, record_error, redact

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector

log = logging.getLogger(__name__)

#: sObject Collections accept at most 200 records a request.
COLLECTION_SIZE = 200
#: Records per Bulk API 2.0 ingest job (well under its 150 MB upload limit).
BULK_JOB_SIZE = 10_000
#: Bulk ingest CSV value that clears a field.
BULK_NULL = "#N/A"


def _order(
    changes: Sequence[RecordChange], parents: Mapping[str, str] | None
) -> list[RecordChange]:
    """Changes grouped by parent (stable); unknown parents keep their order at the end."""
    if not parents:
        return list(changes)
    return sorted(
        changes, key=lambda c: (parents.get(c.record_id) is None, parents.get(c.record_id) or "")
    )


def _chunks(items: Sequence[RecordChange], size: int) -> Iterator[Sequence[RecordChange]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _datetime_text(value: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss.SSSZ``: the dateTime form the REST and Bulk API docs specify.

    ``isoformat()`` would give six sub-second digits, which neither documents.
    """
    value = soql.utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _failure(change: RecordChange, err: ConnectorError) -> WriteResult:
    """A request-level failure as a per-record result (retryable unless the CRM refused it)."""
    return WriteResult(
        change.record_id,
        success=False,
        code=err.code or type(err).__name__,
        message=err.message,
        retryable=not isinstance(err, FatalApiError),
    )


def write_changes(
    connector: SalesforceConnector,
    object_name: str,
    changes: Sequence[RecordChange],
    *,
    parents: Mapping[str, str] | None = None,
    on_call: Callable[[list[WriteResult]], None] | None = None,
) -> list[WriteResult]:
    """Write ``changes`` to ``object_name``; one result per change, in the order given.

    ``on_call`` is told each API call's results (one collections request, one Bulk job) as soon
    as that call has answered, so the caller can commit them before the next call: a crash then
    re-sends at most one call's records.
    """
    if not changes:
        return []
    soql.object_name(object_name)
    for change in changes:
        for name in change.fields:
            if "." in soql.field_name(name):
                msg = f"cannot write relationship path '{name}' on {object_name}"
                raise MappingError(msg)
    ordered = _order(changes, parents)
    if len(ordered) > connector.config.bulk_write_threshold:
        by_id = _write_bulk(connector, object_name, ordered, on_call)
    else:
        by_id = _write_collections(connector, object_name, ordered, on_call)
    return [by_id[c.record_id] for c in changes]


def _told(
    on_call: Callable[[list[WriteResult]], None] | None,
    chunk: Sequence[RecordChange],
    results: Mapping[str, WriteResult],
) -> None:
    if on_call is not None:
        on_call([results[c.record_id] for c in chunk])


def _write_collections(
    connector: SalesforceConnector,
    object_name: str,
    changes: Sequence[RecordChange],
    on_call: Callable[[list[WriteResult]], None] | None = None,
) -> dict[str, WriteResult]:
    results: dict[str, WriteResult] = {}
    for chunk in _chunks(changes, COLLECTION_SIZE):
        body = {
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": object_name},
                    "id": c.record_id,
                    **{k: _json_value(v) for k, v in c.fields.items()},
                }
                for c in chunk
            ],
        }
        try:

            def patch(sf: Salesforce, body: dict[str, Any] = body) -> Any:
                return sf.restful("composite/sobjects", method="PATCH", json=body)

            answer = connector.call(
                patch,
                what=f"update {len(chunk)} {object_name}",
            )
        except ConnectorError as err:
            for c in chunk:
                results[c.record_id] = _failure(c, err)
            _told(on_call, chunk, results)
            continue
        answers = answer if isinstance(answer, list) else []
        for index, change in enumerate(chunk):
            item = answers[index] if index < len(answers) else None
            results[change.record_id] = _collection_result(change, item)
        _told(on_call, chunk, results)
    return results


def _collection_result(change: RecordChange, item: Any) -> WriteResult:
    if not isinstance(item, Mapping):
        return WriteResult(
            change.record_id,
            success=False,
            code="NO_RESULT",
            message="Salesforce returned no result for this record: retried later",
            retryable=True,
        )
    if item.get("success") is True:
        return WriteResult(change.record_id, success=True)
    errors = item.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN")
    message, retryable = record_error(code, str(first.get("message") or ""))
    fields = first.get("fields") or []
    if fields:
        message = f"{', '.join(map(str, fields))}: {message}"
    return WriteResult(
        change.record_id, success=False, code=code, message=message, retryable=retryable
    )


# -- Bulk API 2.0 ingest -------------------------------------------------------------------


def _csv_value(value: Any) -> str:
    if value is None:
        return BULK_NULL
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(_json_value(value))


def _ingest_csv(changes: Sequence[RecordChange]) -> str:
    columns = list(dict.fromkeys(name for c in changes for name in c.fields))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Id", *columns])
    for change in changes:
        # A column this record does not change stays empty: Bulk API ignores empty cells.
        writer.writerow(
            [change.record_id]
            + [_csv_value(change.fields[c]) if c in change.fields else "" for c in columns]
        )
    return buffer.getvalue()


def _write_bulk(
    connector: SalesforceConnector,
    object_name: str,
    changes: Sequence[RecordChange],
    on_call: Callable[[list[WriteResult]], None] | None = None,
) -> dict[str, WriteResult]:
    results: dict[str, WriteResult] = {}
    for chunk in _chunks(changes, BULK_JOB_SIZE):
        try:
            results.update(_bulk_job(connector, object_name, chunk))
        except ConnectorError as err:
            for c in chunk:
                results.setdefault(c.record_id, _failure(c, err))
        _told(on_call, chunk, results)
    return results


def _client(sf: Salesforce, object_name: str) -> Any:
    # Built from the client of this call, so a renewed token reaches the bulk handler.
    return getattr(sf.bulk2, object_name)._client


def _bulk_job(
    connector: SalesforceConnector, object_name: str, changes: Sequence[RecordChange]
) -> dict[str, WriteResult]:
    data = _ingest_csv(changes)
    job = connector.call(
        lambda sf: _client(sf, object_name).create_job(Operation.update),
        what=f"bulk update {object_name}",
    )
    job_id = str(job["id"])
    connector.call(
        lambda sf: _client(sf, object_name).upload_job_data(job_id, data),
        what=f"bulk upload {object_name}",
    )
    connector.call(
        lambda sf: _client(sf, object_name).close_job(job_id), what=f"bulk close {object_name}"
    )
    final = _wait(connector, object_name, job_id)
    state = str(final.get("state"))
    # Failed or Aborted: what the job wrote stays written, so its results still count.
    complete = state == "JobComplete"
    reason = "" if complete else redact(str(final.get("errorMessage") or state))
    if not complete:
        log.warning("Salesforce bulk update job on %s ended %s: %s", object_name, state, reason)

    def results_of(kind: str) -> list[dict[str, str]]:
        try:
            text = connector.call(
                lambda sf: _client(sf, object_name).get_ingest_results(job_id, kind),
                what=f"bulk {kind} {object_name}",
            )
        except ConnectorError:
            if complete:
                raise
            return []  # a job that ended early may lack a list; the records fall back below
        return list(csv.DictReader(io.StringIO(text or "")))

    results: dict[str, WriteResult] = {}
    for row in results_of("successfulResults"):
        # The Id column we sent comes back as is; sf__Id is always the 18-character form.
        rid = row.get("Id") or row.get("sf__Id") or ""
        results[rid] = WriteResult(rid, success=True)
    for row in results_of("failedResults"):
        rid = row.get("Id") or row.get("sf__Id") or ""
        code, _, text = (row.get("sf__Error") or "UNKNOWN:").partition(":")
        message, retryable = record_error(code, text.rstrip(":-"))
        results[rid] = WriteResult(
            rid, success=False, code=code, message=message, retryable=retryable
        )
    if state == "Failed" and not results:
        # The job failed as a whole (its CSV or a column was refused): no record was written,
        # and sending the same job again would fail the same way.
        msg = f"Salesforce bulk update job on {object_name} ended {state}: {reason}"
        err = FatalApiError(msg, system=SYSTEM, code=f"BULK_{state.upper()}")
        return {c.record_id: _failure(c, err) for c in changes}
    stopped = "the bulk job stopped before this record"
    if not complete:
        stopped = f"the bulk job ended {state} ({reason}) before this record"
    for row in results_of("unprocessedrecords"):
        rid = row.get("Id") or ""
        results[rid] = WriteResult(
            rid,
            success=False,
            code="UNPROCESSED",
            message=f"{stopped}: retried later",
            retryable=True,
        )
    for change in changes:
        results.setdefault(
            change.record_id,
            WriteResult(
                change.record_id,
                success=False,
                code="NO_RESULT" if complete else "UNPROCESSED",
                message=(
                    "Salesforce reported no result for this record: retried later"
                    if complete
                    else f"{stopped}: retried later"
                ),
                retryable=True,
            ),
        )
    return results


def _wait(connector: SalesforceConnector, object_name: str, job_id: str) -> Mapping[str, Any]:
    """Poll the ingest job until it ends (JobComplete, Failed or Aborted); its last info."""
    cfg = connector.config
    deadline = time.monotonic() + cfg.bulk_job_timeout_seconds
    interval = cfg.bulk_poll_seconds
    while True:
        job = connector.call(
            lambda sf: _client(sf, object_name).get_job(job_id, False),
            what=f"bulk job status {object_name}",
        )
        state = job.get("state")
        if state in ("JobComplete", "Failed", "Aborted"):
            return job if isinstance(job, Mapping) else {"state": state}
        if time.monotonic() > deadline:
            msg = f"Salesforce bulk update job on {object_name} still {state}: retried later"
            raise RetriableError(msg, system=SYSTEM)
        connector.sleep(interval)
        interval = min(interval * 2, cfg.bulk_poll_max)
