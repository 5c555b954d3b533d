"""The retry policy, declared once for every connector: nothing else retries.

One tenacity policy, :func:`retrying`: only the given exception types are retried (for CRM calls
:class:`~canonical.errors.RetriableError`: 5xx, 429, concurrent request limits, timeouts,
dropped connections), attempts are bounded, and the last error is re-raised as is
(``reraise=True``). Auth errors and rejected requests are never retried.

What differs between callers is only *how long to wait*, so the wait strategy is a parameter:

* :func:`jittered` -- random in ``[0, min(max_wait, multiplier * 2**attempt)]`` seconds
  (tenacity's full-jitter exponential backoff);
* :class:`RetryAfter` -- the server's ``Retry-After`` when a 429 carried one (capped), else a
  fallback strategy; a 429 without one may wait a strategy of its own;
* :class:`UntilNextWindow` -- for limits counted in fixed windows (Gainsight: "100 requests
  between 10:00 am and 10:01 am"): at least to the start of the next window, since a shorter
  wait inside a spent window only draws more 429s and burns the attempts;
* :class:`Doubling` -- doubling from a base, capped, times a random factor in [0.5, 1]: the
  writeback's wait between rounds of records the CRM could not lock.

``sleep`` is a parameter too (tenacity's own ``sleep=``): tests pass a recorder instead of
patching anything.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from canonical.errors import RateLimitedError, RetriableError

log = logging.getLogger(__name__)

#: How long to wait before the next attempt, given tenacity's state of the call.
WaitStrategy = Callable[[RetryCallState], float]
#: How to wait (``time.sleep``, or a recorder in tests).
Sleep = Callable[[float], None]


def _error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def jittered(multiplier: float = 1.0, max_wait: float = 60.0) -> WaitStrategy:
    """Full-jitter exponential backoff: random in [0, min(max_wait, multiplier * 2**n)]."""
    strategy = wait_random_exponential(multiplier=multiplier, max=max_wait)
    return lambda state: float(strategy(state))


class RetryAfter:
    """Wait what a 429's ``Retry-After`` says (capped at ``cap``), else ``fallback``.

    Args:
        fallback: the wait for every other retried error.
        cap: the longest wait a ``Retry-After`` may ask for.
        rate_limited: the wait for a 429 without ``Retry-After`` (``fallback`` when None).
    """

    def __init__(
        self, fallback: WaitStrategy, *, cap: float, rate_limited: WaitStrategy | None = None
    ) -> None:
        self.fallback = fallback
        self.cap = cap
        self.rate_limited = rate_limited

    def __call__(self, state: RetryCallState) -> float:
        """The wait before the next attempt."""
        exc = _error(state)
        if isinstance(exc, RateLimitedError):
            if exc.retry_after is not None:
                return float(min(exc.retry_after, self.cap))
            if self.rate_limited is not None:
                return float(self.rate_limited(state))
        return float(self.fallback(state))


class UntilNextWindow:
    """At least until the next fixed window opens (never more than ``cap``).

    Args:
        fallback: the wait when that is longer than the time left in the window.
        window: the window's length in seconds (windows start at multiples of it).
        cap: the longest wait.
        clock: epoch seconds; places the windows (tests pass a fake).
    """

    def __init__(
        self, fallback: WaitStrategy, *, window: float, cap: float, clock: Callable[[], float]
    ) -> None:
        self.fallback = fallback
        self.window = window
        self.cap = cap
        self.clock = clock

    def __call__(self, state: RetryCallState) -> float:
        """The wait before the next attempt."""
        # A hair past the boundary, so a coarse clock cannot land us back in the window.
        to_next_window = self.window - self.clock() % self.window + 0.01
        return float(min(max(self.fallback(state), to_next_window), self.cap))


class Doubling:
    """``min(cap, base * 2**(n-1))`` before retry ``n``, times a random factor in [0.5, 1].

    The jitter spreads the retries of records that collided on the same lock.
    """

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap

    def __call__(self, state: RetryCallState) -> float:
        """The wait before the next attempt."""
        delay: float = min(self.cap, self.base * 2 ** (state.attempt_number - 1))
        return delay * random.uniform(0.5, 1.0)


def _logger(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s call failed (attempt %d): %s; retrying in %.1fs",
            what,
            state.attempt_number,
            _error(state),
            wait,
        )

    return before_sleep


def retrying(
    max_attempts: int,
    *,
    wait: WaitStrategy,
    what: str,
    sleep: Sleep = time.sleep,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = RetriableError,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """The one tenacity policy: ``retry_on`` errors only, bounded attempts, reraise.

    Args:
        max_attempts: attempts in all (at least one is made).
        wait: the wait strategy (see the module docstring).
        what: names the caller in the warning logged before each wait (``Salesforce``).
        sleep: how to wait; tests pass a recorder.
        retry_on: the exception types worth another attempt.
        before_sleep: called before each wait instead of the default warning.
    """
    return Retrying(
        retry=retry_if_exception_type(retry_on),
        stop=stop_after_attempt(max(1, max_attempts)),
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep or _logger(what),
        reraise=True,
    )
