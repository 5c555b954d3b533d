"""What the app's handlers share: the store, the guard, tokens, limits, the policy."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from rules import Policy
from sync_service.api.ratelimit import RateLimiter
from sync_service.api.tokens import TokenCache
from sync_service.evaluate.guard import Guard
from sync_service.report.web import ReportSource

log = logging.getLogger(__name__)


class PolicyCache:
    """The policy, read again when the rules file changes (checked at most once a second).

    An invalid edit keeps the last valid policy (as the evaluation does).
    """

    def __init__(self, rules_file: Path, snapshot: Path) -> None:
        self.rules_file = rules_file
        self.snapshot = snapshot
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime: float | None = None
        self._policy: Policy | None = None

    def __call__(self) -> Policy:
        """The policy to apply now."""
        now = time.monotonic()
        if self._policy is not None and now - self._checked < 1.0:
            return self._policy
        with self._lock:
            self._checked = now
            try:
                mtime = self.rules_file.stat().st_mtime
            except OSError:
                mtime = None
            if self._policy is None or mtime != self._mtime:
                from sync_service.evaluate.evaluation import load_policy_or_last_valid

                self._policy, _problems = load_policy_or_last_valid(self.rules_file, self.snapshot)
                self._mtime = mtime
            return self._policy


@dataclass
class ApiState:
    """Everything a request handler may use.

    Attributes:
        engine: the store.
        guard: checks and logs asks.
        tokens: API token lookups.
        limiter: the per-token rate limit.
        registry: the Prometheus registry behind ``/metrics``.
        ops_token: when set, ``/metrics`` and ``/readyz`` require it as a bearer token.
        scheduler_running: for ``/readyz`` (None: no scheduler in this process).
        report: the live program report behind ``/report`` (None: not served).
        privacy_key: the tombstones' key, read on use (``POST /v1/privacy/forget``; None: that
            endpoint answers 503).
    """

    engine: Engine
    guard: Guard
    tokens: TokenCache
    limiter: RateLimiter
    registry: CollectorRegistry
    ops_token: str | None = None
    scheduler_running: Callable[[], bool] | None = None
    report: ReportSource | None = None
    privacy_key: Callable[[], bytes] | None = None
    extra: dict[str, object] = field(default_factory=dict)
