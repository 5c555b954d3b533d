"""The Gainsight retry policy, declared once: no other code retries.

Retries :class:`~canonical.errors.RetriableError` (5xx, timeouts, dropped connections) and
:class:`~canonical.errors.RateLimitedError` (429). A 429 waits what ``Retry-After`` says (capped
at ``max_wait``). A 429 without ``Retry-After`` waits at least until the next whole minute:
Gainsight documents its limits as *fixed-window* ("the server will only serve 100 requests
between 10:00 am and 10:01 am"), so a short backoff inside the spent window only draws more
429s and burns the attempts. Everything else waits a jittered exponential backoff. Attempts are
bounded and the last error is re-raised as is (``reraise=True``). Auth and request errors are
never retried.
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
from connectors.gainsight.budget import MINUTE

log = logging.getLogger(__name__)

T = TypeVar("T")


class _WaitRetryAfter:
    """Wait ``Retry-After`` when the server gave one, else jittered exponential backoff.

    A 429 without ``Retry-After`` waits at least to the start of the next fixed minute.
    """

    def __init__(self, max_wait: float, backoff_base: float, clock: Callable[[], float]) -> None:
        self.max_wait = max_wait
        self.clock = clock
        self.fallback = wait_random_exponential(multiplier=backoff_base, max=max_wait)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError):
            if exc.retry_after is not None:
                return float(min(exc.retry_after, self.max_wait))
            # A hair past the boundary, so a coarse clock cannot land us back in the window.
            to_next_window = MINUTE - self.clock() % MINUTE + 0.01
            return float(min(max(self.fallback(state), to_next_window), self.max_wait))
        return float(self.fallback(state))


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "gainsight call failed (attempt %d): %s; retrying in %.1fs",
        state.attempt_number,
        exc,
        wait,
    )


def retrying(
    max_attempts: int,
    *,
    max_wait: float = 120.0,
    backoff_base: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Retrying:
    """The policy: retriable errors only, bounded attempts, Retry-After honoured, reraise.

    ``clock`` (epoch seconds) places the fixed rate-limit windows; tests pass a fake.
    """
    return Retrying(
        retry=retry_if_exception_type(RetriableError),
        stop=stop_after_attempt(max_attempts),
        wait=_WaitRetryAfter(max_wait, backoff_base, clock),
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )


def call_with_retry(policy: Retrying, fn: Callable[[], T]) -> T:
    """Run ``fn`` under ``policy``."""
    return policy(fn)
