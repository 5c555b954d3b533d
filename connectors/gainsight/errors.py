"""The one place Gainsight answers become results or :mod:`canonical.errors` exceptions.

Gainsight answers every call with an envelope::

    {"result": true|false, "errorCode": "...", "errorDesc": "...", "requestId": "...",
     "data": [...] | {"count": n, "errors": [...], "records": [...]}, "message": ...}

The HTTP status alone is not enough: a 200 may carry ``"result": false``. The table:

============================  ===============================================================
answer                        outcome
============================  ===============================================================
401, 403, or an auth code     :class:`AuthError` at once (retrying a rejected key only burns
(``GS_APIG_2401``/``2402``,   budget and can lock the key)
``GSOBJ_1024``)
429 (or ``GU_2400``)          :class:`RateLimitedError` with ``retry_after`` from Retry-After
5xx, bad gateway pages,       :class:`RetriableError`
non-JSON bodies, timeouts,
dropped connections
3xx                           :class:`FatalApiError` (redirects are not followed: the access key
                              must never travel to another host)
"No data found" (documented   an empty result, not an error
``result: false`` reply,
``GSOBJ_1011``)
other 4xx / ``result: false`` :class:`FatalApiError` naming the object, the error code and
                              the action the code asks for (:data:`CODE_HINTS`)
============================  ===============================================================

``errorDesc`` can quote record values (Gainsight's templates echo column values), so it is
shortened and any e-mail address in it is masked before it reaches a message.
"""

from __future__ import annotations

import email.utils
import logging
from datetime import UTC, datetime
from typing import Any

import requests

from canonical.errors import (
    AuthError,
    ConnectorError,
    FatalApiError,
    RateLimitedError,
    RetriableError,
)
from canonical.model import System
from canonical.redaction import safe_message

log = logging.getLogger(__name__)

SYSTEM = System.GAINSIGHT

#: Error codes Gainsight documents for a rejected access key, bad auth headers, or a caller
#: whose IP address the key does not allow.
AUTH_ERROR_CODES = frozenset({"GS_APIG_2401", "GS_APIG_2402", "GSOBJ_1024"})

_AUTH_HINT = "check GAINSIGHT_ACCESS_KEY and GAINSIGHT_BASE_URL"
_MAPPING_HINT = "check the object and field names in mappings/gainsight.yaml"

#: What to do about each documented error code ("Error Codes for Company, Relationship, and
#: Custom Object APIs"; the Data Management APIs' failure samples). Others get a generic hint.
CODE_HINTS: dict[str, str] = {
    "GS_APIG_2401": _AUTH_HINT,
    "GS_APIG_2402": "allow this host's IP address for the Gainsight access key",
    "GSOBJ_1024": _AUTH_HINT + " (the accesskey header was refused)",
    "GSOBJ_1001": "a value is longer than its Gainsight field allows: shorten it or widen the "
    "field in Administration > Data Management",
    "GSOBJ_1002": "a field or value does not fit the object: " + _MAPPING_HINT,
    "GSOBJ_1004": "a Gsid is missing or invalid: check gainsight.write_keys and the record ids",
    "GSOBJ_1005": "a date-time value is in a form Gainsight does not read: check the date "
    "filters in mappings/gainsight.yaml",
    "GSOBJ_1006": "a date value is in a form Gainsight does not read: check the date filters "
    "in mappings/gainsight.yaml",
    "GSOBJ_1007": "a required Gainsight field got an empty value: map a value for it",
    "GSOBJ_1008": "a value does not fit its field's type: check the field types in "
    "mappings/gainsight.yaml against Data Management",
    "GSOBJ_1023": "the API path is invalid: check GAINSIGHT_BASE_URL (the tenant's API domain) "
    "and the object names in mappings/gainsight.yaml",
}


#: Documented codes of a record whose value failed validation (length, type, date format,
#: null in a required field, a bad Gsid); the People API's ``GSOBJ_VDT...`` codes too.
VALUE_ERROR_CODES = frozenset(
    {
        "GSOBJ_1001",
        "GSOBJ_1002",
        "GSOBJ_1004",
        "GSOBJ_1005",
        "GSOBJ_1006",
        "GSOBJ_1007",
        "GSOBJ_1008",
    }
)


def is_value_error(code: str | None) -> bool:
    """True when ``code`` says a record's value failed Gainsight's validation."""
    return bool(code) and (code in VALUE_ERROR_CODES or str(code).startswith("GSOBJ_VDT"))


def hint(code: str | None, default: str = _MAPPING_HINT) -> str:
    """The action a documented error code asks for; ``default`` for any other code."""
    return CODE_HINTS.get(code or "", default)


#: Error codes that mean "too many requests".
RATE_LIMIT_CODES = frozenset({"GU_2400"})
#: Documented "nothing matched" replies (``result: false`` or HTTP 400).
NO_DATA_CODES = frozenset({"GSOBJ_1011"})
_NO_DATA_TEXT = ("no data found for given criteria", "no entity matches the given criteria")

_DESC_MAX = 160


def safe_text(text: object) -> str:
    """``text`` shortened, with e-mail addresses masked: fit for a message or a log line."""
    return safe_message(text, _DESC_MAX)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_no_data(payload: Any) -> bool:
    """True for Gainsight's documented "no rows matched" reply."""
    if not isinstance(payload, dict) or payload.get("result") is not False:
        return False
    if payload.get("errorCode") in NO_DATA_CODES:
        return True
    desc = str(payload.get("errorDesc") or "").lower()
    return any(t in desc for t in _NO_DATA_TEXT)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _code(payload: Any) -> str | None:
    if isinstance(payload, dict) and isinstance(payload.get("errorCode"), str):
        return str(payload["errorCode"])
    return None


def _detail(payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    parts = []
    if _code(payload):
        parts.append(str(payload["errorCode"]))
    if payload.get("errorDesc"):
        parts.append(safe_text(payload["errorDesc"]))
    if payload.get("requestId"):
        parts.append(f"requestId {safe_text(payload['requestId'])}")
    return ": ".join(parts[:2]) + (f" ({parts[2]})" if len(parts) > 2 else "")


def check_response(
    response: requests.Response, *, what: str, per_record: bool = False
) -> dict[str, Any]:
    """Return the envelope of a successful answer, or raise the matching canonical error.

    Args:
        response: the raw answer.
        what: what was asked, for messages (``query Company``); never holds values.
        per_record: a write: a ``result: false`` envelope that lists per-record errors in
            ``data.errors`` is returned (the writer reports each record), not raised.

    Returns:
        The parsed envelope. A documented "no data found" reply comes back as
        ``{"result": True, "data": []}``.

    Raises:
        AuthError, RateLimitedError, RetriableError, FatalApiError: see the module table.
    """
    status = response.status_code
    payload = _json(response)
    code = _code(payload)
    detail = _detail(payload)
    suffix = f" ({detail})" if detail else ""

    if status in (401, 403) or code in AUTH_ERROR_CODES:
        msg = (
            f"Gainsight rejected the access key on {what} (HTTP {status}){suffix}; "
            f"{hint(code, _AUTH_HINT)}"
        )
        raise AuthError(
            msg,
            system=SYSTEM,
            status=status,
            code=code,
        )
    if status == 429 or code in RATE_LIMIT_CODES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        msg = (
            f"Gainsight rate limit on {what} (HTTP {status}); waiting "
            f"{'as asked' if retry_after is not None else 'with backoff'}"
        )
        raise RateLimitedError(
            msg,
            system=SYSTEM,
            status=status,
            code=code,
            retry_after=retry_after,
        )
    if status >= 500:
        msg = f"Gainsight server error on {what} (HTTP {status}){suffix}; will retry"
        raise RetriableError(
            msg,
            system=SYSTEM,
            status=status,
            code=code,
        )
    if 300 <= status < 400:
        msg = (
            f"Gainsight answered {what} with a redirect (HTTP {status}); redirects are not "
            "followed so the access key stays on its host: fix GAINSIGHT_BASE_URL"
        )
        raise FatalApiError(
            msg,
            system=SYSTEM,
            status=status,
        )
    if is_no_data(payload):
        return {"result": True, "data": [], "requestId": payload.get("requestId")}
    if status >= 400:
        msg = f"Gainsight refused {what} (HTTP {status}){suffix}; {hint(code)}"
        raise FatalApiError(
            msg,
            system=SYSTEM,
            status=status,
            code=code,
        )
    if not isinstance(payload, dict):
        # A proxy or maintenance page answering 200 with HTML: transient as far as we know.
        msg = f"Gainsight answered {what} with a body that is not a JSON object; will retry"
        raise RetriableError(
            msg,
            system=SYSTEM,
            status=status,
        )
    if payload.get("result") is False:
        data = payload.get("data")
        if per_record and isinstance(data, dict) and data.get("errors"):
            return payload
        msg = f"Gainsight reported a failure on {what}{suffix}; {hint(code)}"
        raise FatalApiError(
            msg,
            system=SYSTEM,
            status=status,
            code=code,
        )
    return payload


def translate_transport_error(exc: requests.RequestException, *, what: str) -> ConnectorError:
    """A connection drop or timeout as a :class:`RetriableError`; TLS trust as fatal."""
    if isinstance(exc, requests.exceptions.SSLError):
        return FatalApiError(
            f"TLS verification failed on {what}; set REQUESTS_CA_BUNDLE to the tenant's CA bundle",
            system=SYSTEM,
        )
    kind = "timed out" if isinstance(exc, requests.Timeout) else "lost its connection"
    return RetriableError(f"Gainsight call {what} {kind}; will retry", system=SYSTEM)


def extract_records(payload: dict[str, Any], *, what: str) -> list[Any]:
    """The records of a query answer.

    Gainsight's documentation shows both shapes: ``data`` as the list of records (Company and
    custom object Read API samples) and ``data.records`` (the empty-result sample). Anything
    else is a changed contract and fails loudly rather than reading as "no rows".
    """
    data = payload.get("data")
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        records = data.get("records")
        if records is None and "records" in data:
            return []
        if isinstance(records, list):
            return records
    msg = (
        f"Gainsight answered {what} with an unexpected 'data' shape "
        f"({type(data).__name__}); the API contract may have changed"
    )
    raise FatalApiError(
        msg,
        system=SYSTEM,
    )
