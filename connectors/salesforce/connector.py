"""SalesforceConnector: auth, one session, the call wrapper, streams, writes and usage.

Every API call of the connector goes through :meth:`SalesforceConnector.call`, which in order:
checks the API budget, runs the call with simple-salesforce (built on the connector's session),
translates any failure (:mod:`.errors`), renews the token once on 401 INVALID_SESSION_ID (in
the process's :class:`~.auth.TokenCache` when one is given, so every connector sharing it gets
the new token) and repeats the call (simple-salesforce objects, the Bulk 2.0 handlers included,
are rebuilt from the new token), and retries retriable failures under the one policy
(:mod:`connectors.retry`: ``Retry-After`` honoured, else jittered exponential backoff).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode

import requests
from simple_salesforce.api import Salesforce
from tenacity import Retrying

from canonical.errors import AuthError, ConnectorError, FatalApiError, MappingError
from canonical.model import System
from connectors.base import ApiUsage, Connector, Cursor, RecordChange, StreamSpec, WriteResult
from connectors.retry import RetryAfter, Sleep, jittered, retrying
from connectors.salesforce import soql
from connectors.salesforce.auth import Authenticator, Token, TokenCache, cache_key
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.describe import DescribeCache, DescribeStore, ObjectInfo, store_key
from connectors.salesforce.errors import SYSTEM, is_invalid_session, translate
from connectors.salesforce.limits import ApiBudget
from connectors.salesforce.session import build_session
from connectors.salesforce.soql import object_name as valid_object
from connectors.salesforce.streams import SalesforceStream
from connectors.salesforce.writer import write_changes

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Backoff shape: random in [0, min(MAX_WAIT, MULTIPLIER * 2**attempt)] seconds.
MULTIPLIER = 1.0
MAX_WAIT = 60.0
#: Query subrequests one Composite request may hold (Salesforce's limit; 25 subrequests in all).
COMPOSITE_QUERIES = 5
#: A Retry-After longer than this is capped: the run would rather fail and resume later.
MAX_RETRY_AFTER = 300.0
#: Retry-After when Salesforce sent one, else jittered exponential backoff.
WAIT = RetryAfter(jittered(MULTIPLIER, MAX_WAIT), cap=MAX_RETRY_AFTER)


class SalesforceConnector(Connector):
    """The Salesforce side of the service: read streams, write changes, report API usage.

    Args:
        config: the connector's settings.
        session: the HTTP session to use (built by :func:`.session.build_session` when None).
        sleep: how retries and bulk job polls wait (tests pass a recorder).
        tokens: the process's tokens (one login shared by its connectors); None: this
            connector logs in for itself.
    """

    system: ClassVar[System] = SYSTEM

    def __init__(
        self,
        config: SalesforceConfig,
        session: requests.Session | None = None,
        *,
        sleep: Sleep = time.sleep,
        tokens: TokenCache | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.sleep = sleep
        self.session = session if session is not None else build_session(config)
        self.budget = ApiBudget(config.budget_share, config.run_budget_share)
        self._last_headers: Mapping[str, str] = {}
        self.session.hooks.setdefault("response", []).append(self._observe)
        self.auth = Authenticator(config, self.session)
        self._sf: Salesforce | None = None
        self._token: Token | None = None
        self._token_key = cache_key(config, self.auth.flow)
        self.token_renewals = 0
        store = None
        if config.describe_cache_dir is not None:
            key = store_key(
                config.login_url,
                config.instance_url or "",
                config.client_id or "",
                config.username or "",
                config.api_version,
                config.describe_cache_key,
            )
            store = DescribeStore(Path(config.describe_cache_dir) / "describe", key)
        self.describes = DescribeCache(self._describe, store)
        self._planned: dict[str, int] = {}
        #: first pages of planned reads that hold their whole result (see plan_reads)
        self._pages: dict[str, Mapping[str, Any]] = {}

    # -- plumbing -----------------------------------------------------------------------------

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Session hook: every response counts as a call and may report the org's usage."""
        self.budget.observe(response.headers.get("Sforce-Limit-Info"))
        self._last_headers = response.headers

    def _fetch_token(self) -> Token:
        try:
            return self.auth.fetch()
        except ConnectorError:
            raise
        except requests.RequestException as exc:
            raise translate(exc, what=f"{self.auth.flow} login") from exc

    def _login(self, *, renew: bool = False) -> Salesforce:
        def fetch() -> Token:
            return self._retrying()(self._fetch_token)

        if self.tokens is None:
            token = fetch()
        elif renew:
            token = self.tokens.renew(self._token_key, self._token, fetch)
        else:
            token = self.tokens.get(self._token_key, fetch)
        self._token = token
        self._sf = Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            session=self.session,
            version=self.config.api_version,
            # Plain dicts parse faster than simple-salesforce's default OrderedDict.
            object_pairs_hook=dict,
        )
        return self._sf

    def _retrying(self) -> Retrying:
        return retrying(self.config.max_attempts, wait=WAIT, what="Salesforce", sleep=self.sleep)

    def client(self) -> Salesforce:
        """The simple-salesforce client, logging in on first use."""
        return self._sf if self._sf is not None else self._login()

    def _renew(self, what: str) -> None:
        if not self.auth.renewable:
            msg = (
                f"Salesforce rejected the given access token ({what}): set a fresh "
                "SALESFORCE_ACCESS_TOKEN, or configure JWT bearer or client credentials so the "
                "service can renew it"
            )
            raise AuthError(msg, system=SYSTEM, status=401, code="INVALID_SESSION_ID")
        log.info("Salesforce session expired (%s); renewing the token once", what)
        self._sf = None
        self._login(renew=True)
        self.token_renewals += 1

    def call(self, fn: Callable[[Salesforce], T], *, what: str) -> T:
        """Run one API call with budget check, token renewal, translation and retries.

        Args:
            fn: does the call with the current client; it must build any Bulk 2.0 handler from
                that client (so a renewed token reaches it).
            what: names the call in messages (``query Contact``).

        Raises:
            BudgetExhaustedError: the budget share is spent (before the call is made).
            RetriableError: still failing after ``max_attempts``.
            AuthError, FatalApiError: not worth retrying.
        """

        def once() -> T:
            try:
                return fn(self.client())
            except ConnectorError:
                raise
            except Exception as exc:
                raise translate(exc, what=what, headers=self._last_headers) from exc

        def attempt() -> T:
            self.budget.check()
            try:
                return once()
            except ConnectorError as err:
                if not is_invalid_session(err):
                    raise
            self._renew(what)
            try:
                return once()
            except ConnectorError as err:
                if is_invalid_session(err):
                    msg = (
                        f"Salesforce rejected a freshly renewed token ({what}): check the "
                        "connected app's IP restrictions and session policies"
                    )
                    raise AuthError(msg, system=SYSTEM, status=401, code=err.code) from err
                raise

        return self._retrying()(attempt)

    def plan_reads(self, reads: Sequence[tuple[StreamSpec, Cursor | None, datetime]]) -> None:
        """Ask every planned read up front, in Composite requests.

        The Composite resource runs up to 25 subrequests (at most 5 of them queries) as one
        API call. An incremental read is asked as the query itself: its answer carries the
        count (``totalSize``, which decides REST or Bulk) and the first page, which is the
        whole read when it fits (``done``), as it does in a quiet cycle. A first load is asked
        as a ``COUNT()``: it goes to Bulk, and a page of it would be read for nothing. A stream
        then takes its count and page from here (:meth:`planned_count`, :meth:`planned_page`).
        A subrequest that fails is left out: that stream asks for itself and gets the error
        translated as usual.
        """
        asks: dict[str, str] = {}  # the subrequest's query -> the count it answers
        for spec, since, until in reads:
            count = soql.count_query(spec, since, until)
            asks[self._page_query(spec, since, until) or count] = count
        queries = list(asks)
        prefix = f"/services/data/v{self.config.api_version}/queryAll/?"
        batch_size = {"Sforce-Query-Options": f"batchSize={self.config.query_batch_size}"}
        for start in range(0, len(queries), COMPOSITE_QUERIES):
            chunk = queries[start : start + COMPOSITE_QUERIES]
            body = {
                "allOrNone": False,
                "compositeRequest": [
                    {
                        "method": "GET",
                        "url": prefix + urlencode({"q": q}),
                        "referenceId": f"c{i}",
                        "httpHeaders": batch_size,
                    }
                    for i, q in enumerate(chunk)
                ],
            }

            def counts(sf: Salesforce, body: dict[str, Any] = body) -> Any:
                return sf.restful("composite", method="POST", json=body)

            answer = self.call(counts, what=f"composite read of {len(chunk)} stream(s)")
            subs = answer.get("compositeResponse") if isinstance(answer, Mapping) else None
            for query, sub in zip(chunk, subs or (), strict=False):
                result = sub.get("body") if sub.get("httpStatusCode") == 200 else None
                if isinstance(result, Mapping) and "totalSize" in result:
                    self._planned[asks[query]] = int(result["totalSize"])
                    if query != asks[query] and result.get("done") is True:
                        self._pages[query] = result

    def _page_query(self, spec: StreamSpec, since: Cursor | None, until: datetime) -> str | None:
        """The REST read query of an incremental read, or None (a first load, a bad mapping)."""
        if since is None:
            return None
        try:
            fields = self.stream(spec).select_fields()
        except (MappingError, FatalApiError):
            return None  # the stream reports it when it reads
        return soql.read_query(spec, fields, since, until, ordered=True)

    def planned_count(self, count_query: str) -> int | None:
        """The answer :meth:`plan_reads` got for this ``COUNT()`` (once), else None."""
        return self._planned.pop(count_query, None)

    def planned_page(self, query: str) -> Mapping[str, Any] | None:
        """The whole result :meth:`plan_reads` got for this read query (once), else None."""
        return self._pages.pop(query, None)

    def _describe(self, object_name: str) -> Mapping[str, Any]:
        result = self.call(
            lambda sf: sf.restful(f"sobjects/{object_name}/describe/"),
            what=f"describe {object_name}",
        )
        return result if isinstance(result, Mapping) else {}

    # -- Connector ----------------------------------------------------------------------------

    def describe(self, object_name: str) -> ObjectInfo:
        """Field metadata of an object (cached for this connector's life: one run)."""
        return self.describes.get(valid_object(object_name))

    def check_fields(self, spec: StreamSpec) -> ObjectInfo:
        """Raise MappingError naming the object and every missing or unreadable field."""
        return self.describes.check_fields(spec)

    def stream(self, spec: StreamSpec) -> SalesforceStream:
        """The stream reading ``spec`` (fields are checked against describe on first read)."""
        return SalesforceStream(self, spec)

    def write(
        self,
        object_name: str,
        changes: Sequence[RecordChange],
        *,
        parents: Mapping[str, str] | None = None,
        on_call: Callable[[list[WriteResult]], None] | None = None,
    ) -> list[WriteResult]:
        """Write field changes; one result per change (see :mod:`.writer`).

        ``on_call`` receives each API call's results as soon as the call answered.
        """
        return write_changes(self, object_name, changes, parents=parents, on_call=on_call)

    def create(
        self, object_name: str, records: Sequence[RecordChange], external_id_field: str
    ) -> list[WriteResult]:
        """Create records exactly once by their external key (see :mod:`.creator`)."""
        from connectors.salesforce.creator import create_records

        return create_records(self, object_name, records, external_id_field)

    def usage(self) -> ApiUsage:
        """Calls made by this connector and the org's usage as Salesforce last reported it."""
        latest = self.budget.latest
        extra: dict[str, Any] = {"token_renewals": self.token_renewals}
        if latest is not None and latest.bursts_limit is not None:
            extra["api_bursts"] = {"used": latest.bursts_used, "limit": latest.bursts_limit}
        if latest is not None and latest.per_app_limit is not None:
            extra["per_app"] = {
                "used": latest.per_app_used,
                "limit": latest.per_app_limit,
                "app": latest.app_name,
            }
        return ApiUsage(
            calls=self.budget.calls, used=self.budget.used, limit=self.budget.limit, extra=extra
        )

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()
