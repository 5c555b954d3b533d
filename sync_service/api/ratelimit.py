"""A token bucket per API token: ``rate`` requests a second on average, ``burst`` at once.

In memory, per process: each replica limits on its own, which bounds a runaway client without a
shared store round trip on every request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Per-key token buckets."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one request of ``key``; returns 0 if allowed, else seconds to wait."""
        now = self.clock()
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate


def retry_after(wait: float) -> str:
    """A ``Retry-After`` header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait)))
