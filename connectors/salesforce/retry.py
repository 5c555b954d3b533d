"""The retry policy, declared once: nothing else in the connector retries.

Only :class:`~canonical.errors.RetriableError` (5xx, 429, concurrent request limits, timeouts,
dropped connections) is retried, with jittered exponential backoff, ``Retry-After`` honoured
when Salesforce sent one, a bounded number of attempts, and the last error re-raised as is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from canonical.errors import RateLimitedError, RetriableError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Backoff shape: random in [0, min(MAX_WAIT, MULTIPLIER * 2**attempt)] seconds.
MULTIPLIER = 1.0
MAX_WAIT = 60.0
#: A Retry-After longer than this is capped: the run would rather fail and resume later.
MAX_RETRY_AFTER = 300.0

_jitter = wait_random_exponential(multiplier=MULTIPLIER, max=MAX_WAIT)


def sleep(seconds: float) -> None:
    """Sleep between attempts (a module attribute so that tests can make it instant)."""
    time.sleep(seconds)


def wait_seconds(state: RetryCallState) -> float:
    """Retry-After when the CRM sent one, else jittered exponential backoff."""
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        return min(exc.retry_after, MAX_RETRY_AFTER)
    return float(_jitter(state))


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "Salesforce call failed (attempt %d): %s; retrying in %.1fs",
        state.attempt_number,
        exc,
        wait,
    )


def retrying(max_attempts: int) -> Retrying:
    """The connector's tenacity policy for one logical call."""
    return Retrying(
        retry=retry_if_exception_type(RetriableError),
        stop=stop_after_attempt(max(1, max_attempts)),
        wait=wait_seconds,
        sleep=lambda seconds: sleep(seconds),
        before_sleep=_log_retry,
        reraise=True,
    )


def call_with_retry(fn: Callable[[], T], max_attempts: int) -> T:
    """Run ``fn`` under the policy; the last error surfaces unchanged."""
    return retrying(max_attempts)(fn)
