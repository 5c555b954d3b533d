"""API budget: read ``Sforce-Limit-Info`` on every response and stop before the org runs dry.

The daily allocation is shared by every integration of the org, so the connector stops once
the org's usage passes ``budget_share`` of it, or once this run's own calls pass
``run_budget_share`` of it, by raising :class:`~canonical.errors.BudgetExhaustedError` before
the next call. The caller has committed every batch so far: the run ends partial and the next
one resumes from the saved cursor.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

from canonical.errors import BudgetExhaustedError
from canonical.model import System

log = logging.getLogger(__name__)

# Not anchored: the header may carry `; api-bursts=1/750` or `per-app-api-usage=...` around it.
# The lookbehind keeps "per-app-api-usage" from being read as the org's usage.
_API_USAGE = re.compile(r"(?<![\w-])api-usage\s*=\s*(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_API_BURSTS = re.compile(r"(?<![\w-])api-bursts\s*=\s*(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_PER_APP = re.compile(
    r"per-app-api-usage\s*=\s*(\d+)\s*/\s*(\d+)(?:\s*\(appName=([^)]*)\))?", re.IGNORECASE
)


@dataclass(frozen=True)
class LimitInfo:
    """What one ``Sforce-Limit-Info`` header said."""

    used: int | None = None
    limit: int | None = None
    bursts_used: int | None = None
    bursts_limit: int | None = None
    per_app_used: int | None = None
    per_app_limit: int | None = None
    app_name: str | None = None


def parse_limit_info(header: str | None) -> LimitInfo | None:
    """Parse ``Sforce-Limit-Info`` robustly; None when it holds nothing we understand.

    >>> parse_limit_info("api-usage=10018/100000; api-bursts=1/750").used
    10018
    """
    if not header:
        return None
    usage = _API_USAGE.search(header)
    bursts = _API_BURSTS.search(header)
    per_app = _PER_APP.search(header)
    if not (usage or bursts or per_app):
        return None
    return LimitInfo(
        used=int(usage.group(1)) if usage else None,
        limit=int(usage.group(2)) if usage else None,
        bursts_used=int(bursts.group(1)) if bursts else None,
        bursts_limit=int(bursts.group(2)) if bursts else None,
        per_app_used=int(per_app.group(1)) if per_app else None,
        per_app_limit=int(per_app.group(2)) if per_app else None,
        app_name=per_app.group(3) if per_app else None,
    )


class ApiBudget:
    """Counts this run's calls, remembers the org's latest usage, and enforces the shares."""

    def __init__(self, budget_share: float = 0.8, run_budget_share: float | None = None) -> None:
        self.budget_share = budget_share
        self.run_budget_share = run_budget_share
        self.calls = 0
        self.used: int | None = None
        self.limit: int | None = None
        self.latest: LimitInfo | None = None
        self._lock = threading.Lock()

    def observe(self, header: str | None) -> None:
        """Count one HTTP call and read its ``Sforce-Limit-Info`` header, if any."""
        info = parse_limit_info(header)
        with self._lock:
            self.calls += 1
            if info is None:
                return
            self.latest = info
            if info.used is not None and info.limit:
                self.used, self.limit = info.used, info.limit

    def check(self) -> None:
        """Raise BudgetExhaustedError when the next call would overspend a share."""
        if not self.limit or self.used is None:
            return  # nothing known yet: the first response tells us
        share = self.used / self.limit
        if share >= self.budget_share:
            msg = (
                f"Salesforce API usage {self.used:,}/{self.limit:,} ({share:.0%}) reached "
                f"budget_share {self.budget_share:.0%}: stopping cleanly, the next run resumes "
                "where this one stopped; raise budget_share or the org's allocation to go further"
            )
            raise BudgetExhaustedError(msg, system=System.SALESFORCE, code="BUDGET_SHARE")
        if self.run_budget_share is not None:
            allowed = self.run_budget_share * self.limit
            if self.calls >= allowed:
                msg = (
                    f"this run made {self.calls:,} Salesforce calls, its run_budget_share "
                    f"{self.run_budget_share:.0%} of {self.limit:,}: stopping cleanly, the next "
                    "run resumes where this one stopped"
                )
                raise BudgetExhaustedError(msg, system=System.SALESFORCE, code="RUN_BUDGET_SHARE")
