"""Fault injection and API accounting, set per test through ``sandbox.faults``.

Rates draw from their own seeded ``random.Random`` so a failing test fails the same way again.
Everything is guarded by one lock: the servers read it from many threads.

::

    sb.faults.rate_503 = 0.2            # 20% of API calls answer 503
    sb.faults.fail_next(500, count=2)   # exactly the next two Salesforce calls answer 500
    sb.faults.fail_next(403)            # REQUEST_LIMIT_EXCEEDED, the concurrency flavour
    sb.faults.latency = 0.05            # every call waits 50 ms first
    sb.faults.api_limit = 120           # the daily allocation; 403 REQUEST_LIMIT_EXCEEDED beyond
    sb.faults.lock_row_rate = 0.1       # 10% of written records fail UNABLE_TO_LOCK_ROW
    sb.faults.gainsight_per_minute = 5  # Gainsight answers 429 + Retry-After past 5 calls a minute
    sb.faults.expire_tokens()           # every issued Salesforce token now answers 401
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

SALESFORCE = "salesforce"
GAINSIGHT = "gainsight"


@dataclass
class Decision:
    """What a fault check decided for one call: a status to fail with, or none."""

    status: int | None = None
    retry_after: int | None = None


class Faults:
    """Knobs a test turns; read by both servers on every call."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed * 7919 + 1)
        self._forced: deque[tuple[str | None, int]] = deque()
        self._token_epoch = 0
        self.reset()

    def reset(self) -> None:
        """Back to no faults (counters of API usage are kept)."""
        self._forced.clear()
        self._gs_day = int(time.time() // 86400)
        self._gs_today = 0
        self._gs_minute = 0
        self._gs_minute_calls = 0
        #: Share of API calls answering 429, 500, 503 (checked in that order).
        self.rate_429 = 0.0
        self.rate_500 = 0.0
        self.rate_503 = 0.0
        #: Seconds added to every API call.
        self.latency = 0.0
        #: Which systems the rates and latency apply to.
        self.systems: set[str] = {SALESFORCE, GAINSIGHT}
        #: ``Retry-After`` seconds sent with a 429.
        self.retry_after = 1
        #: Share of written records that fail with UNABLE_TO_LOCK_ROW (collections and bulk).
        self.lock_row_rate = 0.0
        #: Salesforce's daily API allocation (``Sforce-Limit-Info`` total).
        self.api_limit = 100_000
        #: Gainsight calls allowed per minute (fixed window) and per day; None: unlimited.
        self.gainsight_per_minute: int | None = None
        self.gainsight_per_day: int | None = None
        #: Lifetime of issued Salesforce tokens, seconds.
        self.token_ttl = 7200.0

    # -- tokens ------------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Invalidate every token issued so far (their next use answers 401)."""
        with self._lock:
            self._token_epoch += 1

    @property
    def token_epoch(self) -> int:
        """Tokens issued in an older epoch are expired."""
        return self._token_epoch

    # -- forced and random failures ----------------------------------------------------------
    def fail_next(self, status: int, count: int = 1, system: str | None = SALESFORCE) -> None:
        """Make the next ``count`` API calls to ``system`` (None: either) answer ``status``."""
        with self._lock:
            for _ in range(count):
                self._forced.append((system, status))

    def decide(self, system: str) -> Decision:
        """Apply latency, then say whether this call fails and how."""
        if self.latency and system in self.systems:
            time.sleep(self.latency)
        with self._lock:
            for i, (target, status) in enumerate(self._forced):
                if target is None or target == system:
                    del self._forced[i]
                    return Decision(status, self.retry_after if status == 429 else None)
            if system not in self.systems:
                return Decision()
            x = self._rng.random()
            if x < self.rate_429:
                return Decision(429, self.retry_after)
            x -= self.rate_429
            if x < self.rate_500:
                return Decision(500)
            x -= self.rate_500
            if x < self.rate_503:
                return Decision(503)
            return Decision()

    def lock_row(self) -> bool:
        """Whether this written record fails with UNABLE_TO_LOCK_ROW."""
        if not self.lock_row_rate:
            return False
        with self._lock:
            return self._rng.random() < self.lock_row_rate

    def gainsight_throttle(self) -> int | None:
        """Seconds to wait when a Gainsight budget is spent, else None (and count the call).

        Gainsight documents *fixed-window* limits ("the server will only serve 100 requests
        between 10:00 am and 10:01 am"): the per-minute budget counts calls in the current
        wall-clock minute and answers with the seconds left in it; the daily one counts since
        the last reset (or midnight UTC) and answers with the seconds left until midnight UTC.
        """
        per_minute, per_day = self.gainsight_per_minute, self.gainsight_per_day
        now = time.time()
        with self._lock:
            day = int(now // 86400)
            if day != self._gs_day:
                self._gs_day, self._gs_today = day, 0
            if per_day is not None and self._gs_today >= per_day:
                return int(86400 - now % 86400) + 1
            if per_minute is not None:
                minute = int(now // 60)
                if minute != self._gs_minute:
                    self._gs_minute, self._gs_minute_calls = minute, 0
                if self._gs_minute_calls >= per_minute:
                    return int(60 - now % 60) + 1
                self._gs_minute_calls += 1
            self._gs_today += 1
            return None


class ApiCounter:
    """Calls per system and per kind (``salesforce``, ``salesforce.query``, ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, system: str, kind: str) -> int:
        """Count one call; return the system's new total."""
        with self._lock:
            self._counts[system] += 1
            self._counts[f"{system}.{kind}"] += 1
            return self._counts[system]

    def add_key(self, key: str) -> None:
        """Count one event under ``key`` alone (not an API call of a system)."""
        with self._lock:
            self._counts[key] += 1

    def get(self, key: str) -> int:
        """The current count for ``key``."""
        with self._lock:
            return self._counts[key]

    def snapshot(self) -> Counter[str]:
        """A copy of all counts."""
        with self._lock:
            return Counter(self._counts)
