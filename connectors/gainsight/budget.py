"""Gainsight's call budget: pace under the per-minute limit, stop before the daily share.

Gainsight documents its limits as *fixed-window* rate limits (about 100 synchronous calls a
minute and 50,000 a day; a window "starts at a specific time", e.g. 10:00-10:01). So the
budget counts calls in the same fixed windows of the wall clock (UTC minutes and UTC days):

* per minute: once ``calls_per_minute`` calls went out in the current minute, the next call
  sleeps until the next minute starts, instead of drawing a 429;
* per day: once ``calls_per_day * budget_share`` calls went out today, the next call raises
  :class:`~canonical.errors.BudgetExhaustedError` *before* it is sent, so the run ends
  partial and resumes tomorrow with the tenant's remaining allowance untouched.

Every attempt counts, retries included: the tenant counts them too. The daily count lives in
this process; the service may seed it (``calls_today``) from earlier runs the same day.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from canonical.errors import BudgetExhaustedError
from canonical.model import System

log = logging.getLogger(__name__)

MINUTE = 60.0
DAY = 86_400.0


class CallBudget:
    """Fixed-window pacing and a daily stop for one tenant's calls.

    Args:
        calls_per_minute: the per-minute allowance.
        daily_budget: calls allowed per UTC day (``calls_per_day * budget_share``).
        calls_per_day: the tenant's whole daily allowance, for reporting.
        clock: epoch seconds (``time.time``); tests pass a fake.
        sleep: how to wait (``time.sleep``); tests pass a fake that advances the clock.
        calls_today: calls already spent today by earlier runs.
    """

    def __init__(
        self,
        calls_per_minute: int,
        daily_budget: int,
        *,
        calls_per_day: int | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        calls_today: int = 0,
    ) -> None:
        self.calls_per_minute = calls_per_minute
        self.daily_budget = daily_budget
        self.calls_per_day = calls_per_day or daily_budget
        #: The clock the budget reads (the retry policy places rate-limit windows with it).
        self.clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._minute = int(now // MINUTE)
        self._minute_calls = 0
        self._day = int(now // DAY)
        self._day_calls = calls_today
        #: Calls made through this budget since it was built.
        self.total_calls = 0
        #: Seconds spent waiting for a new minute, and how many times.
        self.waited_seconds = 0.0
        self.waits = 0

    def acquire(self) -> None:
        """Take one call from the budget, waiting for the next minute if this one is full.

        Raises:
            BudgetExhaustedError: today's share is spent; nothing was sent.
        """
        with self._lock:
            while True:
                now = self.clock()
                day = int(now // DAY)
                if day != self._day:
                    self._day, self._day_calls = day, 0
                if self._day_calls >= self.daily_budget:
                    msg = (
                        f"Gainsight daily budget share used ({self._day_calls} of "
                        f"{self.calls_per_day} calls today, share limit {self.daily_budget}); "
                        "the run stops here and resumes after 00:00 UTC"
                    )
                    raise BudgetExhaustedError(
                        msg,
                        system=System.GAINSIGHT,
                    )
                minute = int(now // MINUTE)
                if minute != self._minute:
                    self._minute, self._minute_calls = minute, 0
                if self._minute_calls < self.calls_per_minute:
                    self._minute_calls += 1
                    self._day_calls += 1
                    self.total_calls += 1
                    return
                # The window is full: sleep to the start of the next one (a hair past it, so a
                # clock with coarse resolution cannot land us back in the full window).
                delay = (minute + 1) * MINUTE - now + 0.01
                log.info(
                    "gainsight: %d calls this minute; pausing %.1fs", self._minute_calls, delay
                )
                self.waits += 1
                self.waited_seconds += delay
                self._sleep(delay)

    @property
    def calls_today(self) -> int:
        """Calls counted in the current UTC day."""
        return self._day_calls

    @property
    def remaining_today(self) -> int:
        """Calls left in today's share."""
        return max(0, self.daily_budget - self._day_calls)
