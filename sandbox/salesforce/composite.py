"""The Composite resource: several REST requests in one call (``POST /composite``).

As Salesforce documents it: up to 25 subrequests, of which up to 5 may be query operations
(Query, QueryAll, and the next batch of a query); the whole request counts as one API call.
Each subrequest is answered by the same route table as a request of its own, and the answers
come back in order as ``compositeResponse``: ``body``, ``httpHeaders``, ``httpStatusCode``,
``referenceId``. With ``allOrNone`` a failed subrequest halts the ones after it (they answer
400 ``PROCESSING_HALTED``); without it the others still run. References between subrequests
(``@{ref.id}``) are not implemented: the service does not use them, so a subrequest naming one
is refused rather than answered wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.http import Request, Response, json_response
from sandbox.salesforce.routes import Call
from sandbox.salesforce.state import bad_json, errors

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5
_SUB_URL = re.compile(r"^/services/data/v(\d{2,3}\.\d)(/.*)$")
_QUERY_KINDS = ("query", "queryAll")

#: Answers one API request: (request, its API version, its path under the version).
Dispatch = Callable[[Request, str, str], Response]


class CompositeResource:
    """``POST /composite`` over the app's own dispatch (see the module docstring)."""

    def __init__(self, dispatch: Dispatch) -> None:
        self.dispatch = dispatch

    def composite(self, call: Call) -> Response:
        """Run the subrequests in order; one response lists every answer."""
        try:
            body = call.req.json()
        except ValueError:
            return bad_json()
        subs = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subs, list) or not subs:
            return errors(400, "INVALID_INPUT", "compositeRequest must be a non-empty list")
        if len(subs) > MAX_SUBREQUESTS:
            msg = f"Exceeded max size limit of {MAX_SUBREQUESTS} subrequests"
            return errors(400, "INVALID_INPUT", msg)
        parsed: list[tuple[dict[str, Any], str, str, dict[str, str]]] = []
        for sub in subs:
            if not isinstance(sub, dict) or not all(
                isinstance(sub.get(k), str) for k in ("method", "url", "referenceId")
            ):
                msg = "each subrequest needs method, url and referenceId"
                return errors(400, "INVALID_INPUT", msg)
            parts = urlsplit(sub["url"])
            m = _SUB_URL.match(parts.path)
            if m is None or "@{" in sub["url"]:
                return errors(400, "INVALID_INPUT", f"unsupported subrequest url {sub['url']}")
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            parsed.append((sub, m.group(1), m.group(2), query))
        queries = sum(1 for _s, _v, rest, _q in parsed if _kind(rest) in _QUERY_KINDS)
        if queries > MAX_QUERIES:
            msg = f"Composite requests may contain at most {MAX_QUERIES} query operations"
            return errors(400, "INVALID_INPUT", msg)
        all_or_none = bool(body.get("allOrNone", False))
        halted = False
        answers: list[dict[str, Any]] = []
        for sub, version, rest, query in parsed:
            if halted:
                resp = errors(400, "PROCESSING_HALTED", "The transaction was rolled back")
            else:
                payload = sub.get("body")
                req = Request(
                    sub["method"].upper(),
                    f"/services/data/v{version}{rest}",
                    query,
                    {**call.req.headers, **_lower(sub.get("httpHeaders"))},
                    json.dumps(payload).encode() if payload is not None else b"",
                )
                resp = self.dispatch(req, version, rest)
                halted = all_or_none and resp.status >= 400
            answers.append(
                {
                    "body": json.loads(resp.body) if resp.body else None,
                    "httpHeaders": {},
                    "httpStatusCode": resp.status,
                    "referenceId": sub["referenceId"],
                }
            )
        return json_response(200, {"compositeResponse": answers})


def _kind(rest: str) -> str:
    return next((p for p in rest.split("/") if p), "")


def _lower(headers: Any) -> dict[str, str]:
    if not isinstance(headers, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}
