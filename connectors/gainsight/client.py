"""One call to Gainsight: budget, then the request, then the answer's translation, retried.

Every call goes through :meth:`GainsightClient.call`, so budget, timeouts, headers, error
translation and retries cannot be skipped by a stream or the writer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

from canonical.errors import BudgetExhaustedError, RateLimitedError
from connectors.gainsight.budget import MINUTE, CallBudget
from connectors.gainsight.config import GainsightConfig
from connectors.gainsight.errors import SYSTEM, check_response, translate_transport_error
from connectors.retry import RetryAfter, Sleep, UntilNextWindow, jittered, retrying

log = logging.getLogger(__name__)

#: The first step of the jittered exponential backoff, in seconds.
BACKOFF_BASE = 1.0


class GainsightClient:
    """Authenticated, paced, retried JSON calls against one tenant.

    Args:
        config: the tenant and its limits.
        session: the injected HTTP session (built by :func:`~.session.build_session` or the
            service); the client still sends ``accesskey`` and a timeout on every call, so any
            plain session works.
        budget: the call budget; built from ``config`` when omitted.
        sleep: how retries wait (tests pass a recorder).

    Retries wait what a 429's ``Retry-After`` says (capped at ``config.max_retry_wait``); a 429
    without one waits at least until the next whole minute, because Gainsight documents its
    limits as *fixed-window* ("the server will only serve 100 requests between 10:00 am and
    10:01 am"); everything else waits a jittered exponential backoff.
    """

    def __init__(
        self,
        config: GainsightConfig,
        session: requests.Session,
        *,
        budget: CallBudget | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.config = config
        self.session = session
        self.budget = budget or CallBudget(
            config.calls_per_minute,
            config.daily_budget,
            calls_per_day=config.calls_per_day,
            calls_today=config.calls_today,
        )
        backoff = jittered(BACKOFF_BASE, config.max_retry_wait)
        wait = RetryAfter(
            backoff,
            cap=config.max_retry_wait,
            rate_limited=UntilNextWindow(
                backoff, window=MINUTE, cap=config.max_retry_wait, clock=self.budget.clock
            ),
        )
        self._policy = retrying(
            config.max_attempts, wait=wait, what=SYSTEM, sleep=sleep or time.sleep
        )
        self._headers = {
            "accesskey": config.access_key.get_secret_value(),
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": config.user_agent,
        }
        #: Attempts sent (retries included) and answers by status, for usage reports.
        self.attempts = 0
        self.statuses: dict[int, int] = {}

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        per_record: bool = False,
    ) -> dict[str, Any]:
        """Send one logical call (retried as the policy says) and return the envelope.

        Args:
            method: ``POST``, ``PUT``, ...
            path: the API path (``/v1/data/objects/query/Company``).
            what: a short description for messages and logs; never holds values.
            json_body: the request body.
            params: query parameters.
            per_record: a write whose envelope may report per-record errors (see errors.py).

        Raises:
            BudgetExhaustedError: today's budget share is spent (nothing sent), or a 429's
                ``Retry-After`` outlasts any retry wait (the tenant's daily limit).
            AuthError, FatalApiError: not retried.
            RetriableError: still failing after ``max_attempts``.
        """
        url = self.config.api_root + path

        def attempt() -> dict[str, Any]:
            self.budget.acquire()
            self.attempts += 1
            try:
                response = self.session.request(
                    method,
                    url,
                    json=json_body,
                    params=params,
                    headers=self._headers,
                    timeout=self.config.timeout_seconds,
                    verify=self.config.ca_bundle or True,
                    # The access key is a plain header: a redirect would carry it to whatever
                    # host the Location names, so redirects are refused (errors.py).
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                raise translate_transport_error(exc, what=what) from None
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            try:
                return check_response(response, what=what, per_record=per_record)
            except RateLimitedError as exc:
                raise self._spent(exc, what) or exc from None

        return self._policy(attempt)

    def _spent(self, exc: RateLimitedError, what: str) -> BudgetExhaustedError | None:
        """A 429 whose ``Retry-After`` outlasts any retry wait, as the end of today's budget.

        A per-minute window reopens within a minute; a longer ``Retry-After`` means the tenant's
        daily allowance (50,000 calls, a fixed UTC day) is spent. Waiting and retrying would
        only burn attempts and fail the run: it stops now as partial and resumes later.
        """
        wait = exc.retry_after
        if wait is None or wait <= max(self.config.max_retry_wait, MINUTE):
            return None
        msg = (
            f"Gainsight's API limit is spent (HTTP 429 on {what}, Retry-After "
            f"{wait / 3600:.1f} h); the run stops here as partial and resumes when the "
            "tenant's limit resets"
        )
        return BudgetExhaustedError(msg, system=SYSTEM, status=exc.status, code=exc.code)
