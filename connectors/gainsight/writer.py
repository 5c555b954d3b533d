"""Writes to Gainsight: ``PUT /v1/data/objects/{object}?keys=Gsid``, at most 50 records a call.

Gainsight's Company and custom object Update API documentation: update by up to three key
fields (ANDed), at most 50 records a call; the answer's ``data`` holds ``count``, ``records``
(those written) and ``errors`` (those refused). A 200 is not a success for every record, so
each record gets its own :class:`~connectors.base.WriteResult`:

* listed in ``data.errors`` → failed, with the error's code and (masked) message;
* confirmed in ``data.records`` (or covered by ``count`` when no record list came back) →
  success;
* neither → failed as ``UNCONFIRMED`` and retryable: nothing is marked written until Gainsight
  confirmed it.

Call-level failures become per-record results too (retryable for 5xx / rate limits after the
retry policy gave up, not retryable for a refused request); an auth failure or a spent budget
is raised, since the whole run must stop.

Gainsight validates every record of a call before writing any ("If the validation fails for any
record on any field, then the API call fails with a validation error": Company and custom object
API documentation), so one bad value would fail the 49 good records beside it on every run. A
batch refused with a record-validation code (:data:`~.errors.VALUE_ERROR_CODES`) is therefore
split in halves and each half sent again, down to the record at fault. When every part of a
split is refused the cause is not one record (a field the mapping gets wrong, say): the split
stops there, so a systemic error costs a few calls, not one per record.

People (``Person``, ``Company_Person``) are written through Gainsight's People API, keyed by
e-mail, not through this endpoint; writing them here is refused per record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from canonical.errors import (
    AuthError,
    BudgetExhaustedError,
    ConnectorError,
    FatalApiError,
    RetriableError,
)
from connectors.base import RecordChange, WriteResult
from connectors.gainsight.client import GainsightClient
from connectors.gainsight.config import MAX_WRITE_BATCH
from connectors.gainsight.errors import is_value_error, safe_text
from connectors.gainsight.query import check_identifier, check_object

log = logging.getLogger(__name__)

#: Objects Gainsight updates through the People API rather than the data objects API.
PEOPLE_OBJECTS = frozenset({"Person", "Company_Person"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _error_fields(err: Any) -> tuple[str | None, str | None]:
    if not isinstance(err, dict):
        return None, safe_text(err) or None
    code = err.get("errorCode") or err.get("code")
    msg = err.get("errorDesc") or err.get("errorMessage") or err.get("message")
    return (str(code) if code else None), (safe_text(msg) if msg else None)


class GainsightWriter:
    """Batches field changes into update calls and reads back one verdict per record.

    Args:
        client: the tenant's client.
        keys: the key fields of the update (``Gsid``); the first holds the record id.
    """

    def __init__(self, client: GainsightClient, keys: Sequence[str] = ("Gsid",)) -> None:
        self.client = client
        self.keys = [check_identifier(k, what="key") for k in keys]

    def write(
        self,
        object_name: str,
        changes: Sequence[RecordChange],
        on_call: Callable[[list[WriteResult]], None] | None = None,
    ) -> list[WriteResult]:
        """Write ``changes`` to ``object_name``; one result per change, in order.

        ``on_call`` is told each batch's results (one call, or the halves of a refused one) as
        soon as it is answered, so the caller can commit them before the next call.
        """
        check_object(object_name)
        if object_name in PEOPLE_OBJECTS:
            return [
                WriteResult(
                    c.record_id,
                    False,
                    code="UNSUPPORTED_OBJECT",
                    message=f"{object_name} is written through Gainsight's People API; "
                    "map the writeback to Company or a custom object",
                )
                for c in changes
            ]
        results: list[WriteResult] = []
        for start in range(0, len(changes), MAX_WRITE_BATCH):
            batch = self._write_batch(object_name, changes[start : start + MAX_WRITE_BATCH])
            if on_call is not None:
                on_call(batch)
            results += batch
        return results

    def _write_batch(self, object_name: str, batch: Sequence[RecordChange]) -> list[WriteResult]:
        results, refusal = self._send(object_name, batch)
        if refusal is None or len(batch) < 2:
            return results
        return self._isolate(object_name, batch, results)

    def _isolate(
        self, object_name: str, batch: Sequence[RecordChange], refused: list[WriteResult]
    ) -> list[WriteResult]:
        """Halve a batch refused for a record's value until the refused records stand alone."""
        mid = len(batch) // 2
        halves = [batch[:mid], batch[mid:]]
        sent = [self._send(object_name, half) for half in halves]
        if all(err is not None for _, err in sent):
            # Both halves refused too: not one bad record. Keep the first verdicts and stop.
            log.warning(
                "gainsight update %s: every part of a batch of %d refused (%s); not splitting "
                "further",
                object_name,
                len(batch),
                refused[0].code,
            )
            return [r for results, _ in sent for r in results]
        out: list[WriteResult] = []
        for half, (results, err) in zip(halves, sent, strict=True):
            if err is not None and len(half) > 1:
                out += self._isolate(object_name, half, results)
            else:
                out += results
        return out

    def _send(
        self, object_name: str, batch: Sequence[RecordChange]
    ) -> tuple[list[WriteResult], FatalApiError | None]:
        """One update call; the refusal is returned when a record's value refused the batch."""
        key = self.keys[0]
        records = []
        for c in batch:
            for f in c.fields:
                check_identifier(f)
            records.append({**{f: _jsonable(v) for f, v in c.fields.items()}, key: c.record_id})
        what = f"update {object_name}"
        try:
            payload = self.client.call(
                "PUT",
                f"/v1/data/objects/{object_name}",
                what=what,
                params={"keys": ",".join(self.keys)},
                json_body={"records": records},
                per_record=True,
            )
        except (AuthError, BudgetExhaustedError):
            raise
        except ConnectorError as exc:
            retryable = isinstance(exc, RetriableError)
            code = exc.code or ("RETRY_EXHAUSTED" if retryable else "REQUEST_REFUSED")
            log.warning("gainsight %s: batch of %d failed: %s", what, len(batch), exc)
            failed = [WriteResult(c.record_id, False, code, exc.message, retryable) for c in batch]
            if isinstance(exc, FatalApiError) and is_value_error(exc.code):
                return failed, exc
            return failed, None
        return self._verdicts(batch, payload, key), None

    def _verdicts(
        self, batch: Sequence[RecordChange], payload: dict[str, Any], key: str
    ) -> list[WriteResult]:
        data = payload.get("data")
        data = data if isinstance(data, dict) else {}
        sent = [c.record_id for c in batch]
        failed: dict[str, tuple[str | None, str | None]] = {}
        unattributed: list[tuple[str | None, str | None]] = []
        errors = data.get("errors") or []
        if isinstance(errors, dict):
            errors = [{"record": {key: k}, "errorDesc": v} for k, v in errors.items()]
        for err in errors if isinstance(errors, list) else []:
            rid = self._error_record_id(err, key, sent)
            if rid is not None:
                failed[rid] = _error_fields(err)
            else:
                unattributed.append(_error_fields(err))
        confirmed: set[str] | None = None
        recs = data.get("records")
        if isinstance(recs, list):
            confirmed = {str(r.get(key)) for r in recs if isinstance(r, dict) and r.get(key)}
        count = data.get("count")
        out = []
        for rid in sent:
            if rid in failed:
                code, msg = failed[rid]
                out.append(WriteResult(rid, False, code or "GAINSIGHT_ERROR", msg))
            elif unattributed:
                # Gainsight reported errors we cannot tie to a record: trust no record of it.
                code, msg = unattributed[0]
                out.append(WriteResult(rid, False, code or "GAINSIGHT_ERROR", msg, retryable=True))
            elif confirmed is not None and confirmed:
                if rid in confirmed:
                    out.append(WriteResult(rid, True))
                else:
                    out.append(self._unconfirmed(rid))
            elif isinstance(count, int) and count == len(sent) - len(failed):
                out.append(WriteResult(rid, True))
            else:
                out.append(self._unconfirmed(rid))
        return out

    @staticmethod
    def _unconfirmed(rid: str) -> WriteResult:
        return WriteResult(
            rid,
            False,
            "UNCONFIRMED",
            "Gainsight did not confirm this record; it will be written again",
            retryable=True,
        )

    @staticmethod
    def _error_record_id(err: Any, key: str, sent: list[str]) -> str | None:
        if not isinstance(err, dict):
            return None
        for holder in (err, err.get("record"), err.get("data")):
            if isinstance(holder, dict) and holder.get(key) is not None:
                rid = str(holder[key])
                return rid if rid in sent else None
        for idx_key in ("index", "recordIndex", "rowNumber"):
            idx = err.get(idx_key)
            if isinstance(idx, int) and 0 <= idx < len(sent):
                return sent[idx]
        return None
