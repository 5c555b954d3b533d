"""The one place where Salesforce failures become the service's exceptions.

Everything the connector calls can fail in three shapes: simple-salesforce raises its own
``SalesforceError`` subclasses (with the parsed ``[{"errorCode", "message"}]`` list in
``.content``), ``requests`` raises transport errors, and our own calls (token endpoint, bulk
results) hand us a :class:`requests.Response`. :func:`translate` maps each to
:mod:`canonical.errors`::

    INVALID_SESSION_ID (401)            AuthError (code kept: the connector renews once)
    REQUEST_LIMIT_EXCEEDED, daily       BudgetExhaustedError  (stop, partial run)
    REQUEST_LIMIT_EXCEEDED, concurrent  RateLimitedError      (back off, retry)
    429                                 RateLimitedError (Retry-After honoured)
    5xx, SERVER_UNAVAILABLE, timeouts,
    connection errors                   RetriableError
    INSUFFICIENT_ACCESS*, 401, 403      AuthError   (fix the integration user)
    INVALID_FIELD, INVALID_TYPE,
    MALFORMED_QUERY, QUERY_TIMEOUT,
    other 4xx, failed bulk jobs         FatalApiError (fix the mapping or query; no retry)

Messages carry the Salesforce code, its message (emails redacted), and what to do next.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceOperationError,
)

from canonical.errors import (
    AuthError,
    BudgetExhaustedError,
    ConnectorError,
    FatalApiError,
    RateLimitedError,
    RetriableError,
)
from canonical.model import System
from canonical.redaction import safe_message

SYSTEM = System.SALESFORCE

#: What an admin should do about each common error code.
ACTIONS: dict[str, str] = {
    "INVALID_FIELD": (
        "a mapped field does not exist on the object or is hidden from the integration user: "
        "fix the mapping or grant field-level security"
    ),
    "INVALID_TYPE": (
        "the object does not exist or the integration user cannot see it: fix the mapping's "
        "object name or grant object access"
    ),
    "MALFORMED_QUERY": "the query built from the mapping is invalid: check the mapping's filters",
    "QUERY_TIMEOUT": (
        "Salesforce timed the query out: add a selective filter, or lower bulk_query_threshold "
        "so the stream reads with Bulk API 2.0"
    ),
    "INSUFFICIENT_ACCESS_OR_READONLY": (
        "the integration user may not edit this record or field: grant edit access "
        "(profile, permission set or sharing)"
    ),
    "INSUFFICIENT_ACCESS": "the integration user lacks a permission: check its permission sets",
    "INVALID_FIELD_FOR_INSERT_UPDATE": (
        "the field is read-only for the integration user (formula, or no edit access): "
        "remove it from the writeback mapping or grant edit access"
    ),
    "INVALID_SESSION_ID": (
        "the access token expired or was revoked: check the connected app's session policy "
        "and the integration user's credentials"
    ),
    "API_DISABLED_FOR_ORG": (
        "the org's edition or the user's profile has no API access: enable 'API Enabled'"
    ),
    "API_CURRENTLY_DISABLED": (
        "API access is disabled for the integration user: enable 'API Enabled'"
    ),
    "REQUEST_LIMIT_EXCEEDED": (
        "the org's daily API allocation is spent: the run stops and resumes later; lower "
        "budget_share or buy more API calls"
    ),
    "CONCURRENT_LIMIT": "too many long-running requests in the org at once: backing off",
    "STRING_TOO_LONG": (
        "the value is longer than the field allows: widen the field or shorten the value"
    ),
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": (
        "the value is not in the restricted picklist: add it to the picklist or change the rules"
    ),
    "UNABLE_TO_LOCK_ROW": "another process holds the record (or its parent) locked: retried later",
    "NOT_FOUND": "the resource does not exist: check the object name and API version",
    "ENTITY_IS_DELETED": "the record was deleted in Salesforce",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": (
        "a validation rule rejected the value: check the org's validation rules"
    ),
    "INVALID_CROSS_REFERENCE_KEY": (
        "the record id does not exist or is not visible to the integration user"
    ),
}

#: Per-record codes whose write may succeed later as it is.
RETRYABLE_RECORD_CODES: frozenset[str] = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG", "BUDGET_EXHAUSTED"}
)

_PERMISSION_CODES = frozenset(
    {
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "INSUFFICIENT_ACCESS",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "API_DISABLED_FOR_ORG",
        "API_CURRENTLY_DISABLED",
        "INVALID_SESSION_ID",
    }
)
_RETRYABLE_CODES = frozenset(
    {"SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG"}
)
_MAX_MESSAGE = 300


def redact(text: str) -> str:
    """Remove email addresses (personal data) from a CRM message and bound its length."""
    return safe_message(text, _MAX_MESSAGE)


def action_for(code: str | None) -> str | None:
    """The admin action for an error code, when we know one."""
    return ACTIONS.get(code or "")


def is_daily_limit(message: str, status: int | None = None) -> bool:
    """Whether a REQUEST_LIMIT_EXCEEDED answer is about the daily allocation (not concurrency)."""
    # Salesforce says "TotalRequests Limit exceeded." for the daily allocation and
    # "ConcurrentPerOrgLongTxn Limit exceeded." for concurrency. It documents the code with 403:
    # when unsure, stop rather than hammer an org whose budget may be spent. A 429 (with
    # Retry-After) asks us to come back shortly: daily only when its message names it.
    text = message.lower()
    if status == 429:
        return "totalrequests" in text
    return "concurrent" not in text


def _first_error(content: Any) -> tuple[str | None, str]:
    """(errorCode, message) from a Salesforce error body in any of its shapes."""
    if isinstance(content, bytes | bytearray):
        content = content.decode("utf-8", "replace")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            return None, content
    if isinstance(content, list) and content:
        content = content[0]
    if isinstance(content, Mapping):
        code = content.get("errorCode") or content.get("error")
        message = content.get("message") or content.get("error_description") or ""
        return (str(code) if code else None), str(message)
    return None, "" if content is None else str(content)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def from_status(
    status: int | None,
    content: Any,
    *,
    headers: Mapping[str, str] | None = None,
    what: str = "",
) -> ConnectorError:
    """Translate an HTTP status and Salesforce error body into the service's error class."""
    code, raw_message = _first_error(content)
    message = redact(raw_message)
    where = f" ({what})" if what else ""
    label = code or (f"HTTP {status}" if status else "error")
    kw: dict[str, Any] = {"system": SYSTEM, "status": status, "code": code}

    def text(action: str | None) -> str:
        base = f"Salesforce {label}{where}: {message}" if message else f"Salesforce {label}{where}"
        return f"{base} — {action}" if action else base

    if code == "REQUEST_LIMIT_EXCEEDED":
        if is_daily_limit(raw_message, status):
            return BudgetExhaustedError(text(ACTIONS["REQUEST_LIMIT_EXCEEDED"]), **kw)
        return RateLimitedError(
            text(ACTIONS["CONCURRENT_LIMIT"]), retry_after=_retry_after(headers), **kw
        )
    if status == 429:
        return RateLimitedError(
            text("Salesforce asked us to slow down: backing off"),
            retry_after=_retry_after(headers),
            **kw,
        )
    if code in _RETRYABLE_CODES or (status is not None and status >= 500):
        return RetriableError(text("transient; retried with backoff"), **kw)
    if code in _PERMISSION_CODES or status in (401, 403):
        return AuthError(text(action_for(code) or "check the integration user's access"), **kw)
    return FatalApiError(text(action_for(code) or "fix the request's configuration"), **kw)


def translate(
    exc: BaseException, *, what: str = "", headers: Mapping[str, str] | None = None
) -> ConnectorError:
    """Translate any exception raised by a Salesforce call into the service's error class.

    Args:
        exc: what the call raised.
        what: the call, for the message (``query Contact``).
        headers: the failed response's headers when known (simple-salesforce drops them),
            so that ``Retry-After`` is honoured.
    """
    if isinstance(exc, ConnectorError):
        return exc
    where = f" ({what})" if what else ""
    if isinstance(exc, SalesforceAuthenticationFailed):
        return AuthError(
            f"Salesforce login failed{where}: {redact(exc.auth_message)}",
            system=SYSTEM,
            status=401,
            code=str(exc.code) if exc.code else None,
        )
    if isinstance(exc, SalesforceError):
        return from_status(exc.status, exc.content, headers=headers, what=what)
    if isinstance(exc, SalesforceOperationError):
        # A bulk job that ended Failed/Aborted: the job's own message says why.
        return FatalApiError(
            f"Salesforce bulk job failed{where}: {redact(str(exc))}", system=SYSTEM
        )
    if isinstance(exc, requests.exceptions.SSLError):
        # A certificate the client does not trust will not become trusted by retrying.
        return FatalApiError(
            f"TLS verification of Salesforce failed{where}: set REQUESTS_CA_BUNDLE (ca_bundle) "
            "to the CA that signs the server's certificate, or check login_url/instance_url",
            system=SYSTEM,
            code="TLS_VERIFY_FAILED",
        )
    if isinstance(exc, requests.Timeout):
        return RetriableError(
            f"Salesforce did not answer in time{where}: retried; "
            "raise timeout_seconds if it persists",
            system=SYSTEM,
        )
    if isinstance(exc, requests.ConnectionError):
        return RetriableError(
            f"cannot reach Salesforce{where}: {type(exc).__name__}; check the network and "
            "login_url/instance_url",
            system=SYSTEM,
        )
    if isinstance(exc, requests.RequestException):
        return RetriableError(
            f"HTTP error talking to Salesforce{where}: {type(exc).__name__}", system=SYSTEM
        )
    return FatalApiError(
        f"unexpected answer from Salesforce{where}: {type(exc).__name__}: {redact(str(exc))}",
        system=SYSTEM,
    )


def from_response(response: requests.Response, *, what: str = "") -> ConnectorError:
    """Translate a failed :class:`requests.Response` we made ourselves."""
    try:
        content: Any = response.json()
    except ValueError:
        content = response.text
    return from_status(response.status_code, content, headers=response.headers, what=what)


def is_invalid_session(err: ConnectorError) -> bool:
    """Whether the error means the token expired (renew once and repeat)."""
    return err.status == 401 and err.code in (None, "INVALID_SESSION_ID")


def record_error(code: str | None, message: str | None) -> tuple[str, bool]:
    """(admin-readable message, retryable) for one record's error in a write result."""
    text = redact(message or "")
    action = action_for(code)
    if action:
        text = f"{text} — {action}" if text else action
    return text, (code or "") in RETRYABLE_RECORD_CODES
