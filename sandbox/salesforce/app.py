"""The Salesforce side's HTTP handler: authorisation, API accounting, faults, the route table.

Every call under ``/services/data/vXX.X/`` needs a bearer token (``auth.py``), is counted
against the daily allocation reported in ``Sforce-Limit-Info: api-usage=N/M`` and may be failed
by the fault injector; then ``ROUTES`` (method + path pattern -> handler) picks the handler in
``rest.py``, ``query.py``, ``bulk.py`` or ``composite.py`` (whose subrequests are dispatched
through the same table, inside the one counted call). An unknown path answers 404
``NOT_FOUND``, a known path with another method 405 ``METHOD_NOT_ALLOWED``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sandbox.faults import SALESFORCE, ApiCounter, Faults
from sandbox.http import Request, Response, json_response
from sandbox.org import Org, UnknownFieldError
from sandbox.salesforce.auth import OAUTH_ENDPOINT, Auth
from sandbox.salesforce.bulk import BulkJobs
from sandbox.salesforce.composite import CompositeResource
from sandbox.salesforce.query import QueryResource
from sandbox.salesforce.rest import RestResources
from sandbox.salesforce.routes import Call, Route, RouteTable
from sandbox.salesforce.state import (
    API_VERSIONS,
    Credentials,
    SalesforceState,
    errors,
    not_found,
)
from sandbox.soql import SoqlError

_VERSION_RE = re.compile(r"^/services/data/v(\d{2,3}\.\d)(/.*)?$")

#: What a forced or random failure of each status says (403 is the concurrency limit, which a
#: client should back off from, unlike the daily limit's "TotalRequests Limit exceeded.").
_FAULTS: dict[int, tuple[str, str]] = {
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests"),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
}


def api_routes(
    rest: RestResources, query: QueryResource, bulk: BulkJobs, composite: CompositeResource
) -> RouteTable:
    """The routes under ``/services/data/vXX.X`` (patterns are relative to it)."""
    return RouteTable(
        [
            Route("POST", "/composite", composite.composite),
            Route("GET", "/", rest.resources),
            # sObjects and describe
            Route("GET", "/sobjects", rest.sobjects),
            Route("GET", "/sobjects/{object}", rest.object_info),
            Route("POST", "/sobjects/{object}", rest.create),
            Route("GET", "/sobjects/{object}/describe", rest.describe),
            Route("GET", "/sobjects/{object}/deleted", rest.deleted),
            Route("GET", "/sobjects/{object}/updated", rest.updated),
            Route("GET", "/sobjects/{object}/{id}", rest.get_record),
            Route("PATCH", "/sobjects/{object}/{id}", rest.update_record),
            Route("DELETE", "/sobjects/{object}/{id}", rest.delete_record),
            Route("PATCH", "/composite/sobjects", rest.collections_update),
            Route("POST", "/composite/sobjects", rest.collections_create),
            Route("GET", "/limits", rest.limits),
            # SOQL
            Route("GET", "/query", query.query),
            Route("GET", "/queryAll", query.query_all),
            Route("GET", "/query/{locator}", query.query_more),
            Route("GET", "/queryAll/{locator}", query.query_more),
            # Bulk API 2.0
            Route("POST", "/jobs/query", bulk.create_query_job),
            Route("GET", "/jobs/query", bulk.list_query_jobs),
            Route("GET", "/jobs/query/{job}", bulk.query_job_info),
            Route("PATCH", "/jobs/query/{job}", bulk.abort_query_job),
            Route("DELETE", "/jobs/query/{job}", bulk.delete_query_job),
            Route("GET", "/jobs/query/{job}/results", bulk.query_results),
            Route("POST", "/jobs/ingest", bulk.create_ingest_job),
            Route("GET", "/jobs/ingest", bulk.list_ingest_jobs),
            Route("GET", "/jobs/ingest/{job}", bulk.ingest_job_info),
            Route("PATCH", "/jobs/ingest/{job}", bulk.set_ingest_state),
            Route("DELETE", "/jobs/ingest/{job}", bulk.delete_ingest_job),
            Route("PUT", "/jobs/ingest/{job}/batches", bulk.upload),
            Route("GET", "/jobs/ingest/{job}/successfulResults", bulk.successful_results),
            Route("GET", "/jobs/ingest/{job}/failedResults", bulk.failed_results),
            Route("GET", "/jobs/ingest/{job}/unprocessedrecords", bulk.unprocessed_records),
        ]
    )


class SalesforceApp:
    """The HTTP handler of the Salesforce side."""

    def __init__(
        self,
        org: Org,
        faults: Faults,
        counter: ApiCounter,
        creds: Credentials,
        base_url: Callable[[], str],
    ) -> None:
        self.state = SalesforceState(org, faults, counter, creds, base_url)
        self.auth = Auth(self.state)
        self.routes = api_routes(
            RestResources(self.state),
            QueryResource(self.state),
            BulkJobs(self.state),
            CompositeResource(self._dispatch),
        )
        # Outside the API: no token needed, nothing counted.
        self.public_routes = RouteTable(
            [
                Route("POST", OAUTH_ENDPOINT, lambda call: self.auth.token(call.req)),
                Route("GET", "/services/data", lambda _call: _versions()),
            ]
        )

    @property
    def tokens(self) -> dict[str, tuple[float, int]]:
        """Every access token handed out: token -> (issued monotonic time, token epoch)."""
        return self.state.tokens

    @property
    def api_used(self) -> int:
        """API calls counted against the daily allocation so far."""
        return self.state.api_used

    @api_used.setter
    def api_used(self, value: int) -> None:
        self.state.api_used = value

    def __call__(self, req: Request) -> Response:
        """Answer one request."""
        public = self.public_routes.resolve(req.method, req.path)
        if public.handler is not None:
            return public.handler(Call(req, "", public.params))
        m = _VERSION_RE.match(req.path)
        if m is None:
            return not_found()
        version, rest = m.group(1), (m.group(2) or "/")
        denied = self.auth.authorize(req)
        if denied is not None:
            return denied
        # Counted like the daily allocation: every authorised call, failed ones too.
        kind = next((p for p in rest.split("/") if p), "root")
        if rest.strip("/") == "composite":  # the Composite resource, not sObject Collections
            kind = "composite_request"
        self.state.counter.add(SALESFORCE, {"queryAll": "query"}.get(kind, kind))
        decision = self.state.faults.decide(SALESFORCE)
        headers = self.state.limit_header()
        if decision.status is not None:
            status = decision.status
            if status == 429:
                headers["Retry-After"] = str(decision.retry_after or 1)
            code, message = _FAULTS.get(
                status, ("UNKNOWN_EXCEPTION", "An unexpected error occurred")
            )
            return errors(status, code, message, headers)
        resp = self._dispatch(req, version, rest)
        resp.headers.update(headers)
        return resp

    def _dispatch(self, req: Request, version: str, rest: str) -> Response:
        """Answer an authorised, counted request (or a composite's subrequest) by its route."""
        match = self.routes.resolve(req.method, rest)
        try:
            if match.handler is not None:
                return match.handler(Call(req, version, match.params))
            if match.allowed:
                return errors(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed")
            return not_found()
        except SoqlError as exc:
            return errors(400, exc.code, exc.message)
        except UnknownFieldError as exc:
            return errors(400, "INVALID_FIELD", str(exc))


def _versions() -> Response:
    return json_response(
        200,
        [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS],
    )
