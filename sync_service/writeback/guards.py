"""The guards between a computed change and the CRM.

* **Override** — a person set the target's override field (``Advocate_Override__c``) on the
  record: the service leaves the whole record alone and counts it.
* **Drift** — the CRM's current value (read by the latest sync, ``extra['_crm']``) differs
  from the value the service last confirmed writing: a person changed it. The service reports a
  conflict and keeps its hands off, unless the mapping says it owns the field outright.
* **Blast radius** — one run would change the status of more than a set share of records
  (a bad rules edit): the whole writeback is held until ``writeback --confirm``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sync_service.writeback.values import same, truthy


def is_overridden(crm: Mapping[str, Any], override_field: str | None) -> bool:
    """Whether a person set the override field on the record."""
    return override_field is not None and truthy(crm.get(override_field))


class Baseline(Enum):
    """Where a field's "old" value comes from."""

    WRITTEN = "written"  # the value last confirmed written (writeback_state)
    CRM = "crm"  # the CRM's current value (first run, nothing written yet)
    UNKNOWN = "unknown"  # neither: never written and the sync has not seen the field


class Verdict(Enum):
    """What to do with one field of one record."""

    UNCHANGED = "unchanged"  # the CRM already has the desired value
    WRITE = "write"  # enqueue the desired value
    ADOPT = "adopt"  # the CRM was changed to exactly the desired value: record it, no call
    CONFLICT = "conflict"  # a person changed it; leave it
    OVERWRITE = "overwrite"  # a person changed it, but the service owns the field


@dataclass(frozen=True)
class FieldDecision:
    """The verdict on one field and the value the CRM holds before the write."""

    verdict: Verdict
    old: Any = None


def decide(
    result: str,
    desired: Any,
    *,
    written: tuple[Any, datetime] | None,
    crm_known: bool,
    crm_value: Any,
    synced_at: datetime | None,
    owned: bool,
) -> FieldDecision:
    """Decide one field: compare ``desired`` with the right baseline and apply the drift guard.

    Args:
        result: the result name (for value comparison rules).
        desired: the normalised value the rules produced.
        written: (value, confirmed_at) last confirmed written, or None if never written.
        crm_known: whether the latest sync saw this field on the record.
        crm_value: the normalised value the latest sync saw.
        synced_at: when the record was last synced into the store.
        owned: whether the mapping owns the field outright.
    """
    if written is None:
        # First write of this field: the CRM's current value is the baseline.
        if crm_known:
            if same(result, crm_value, desired):
                return FieldDecision(Verdict.UNCHANGED)
            return FieldDecision(Verdict.WRITE, crm_value)
        if desired is None:
            return FieldDecision(Verdict.UNCHANGED)
        return FieldDecision(Verdict.WRITE, None)
    written_value, confirmed_at = written
    # The sync's copy says something about a person's edit only when it was read after our
    # confirmed write; an older copy simply predates the write.
    fresh = crm_known and synced_at is not None and synced_at > confirmed_at
    if fresh and not same(result, crm_value, written_value):
        if same(result, crm_value, desired):
            return FieldDecision(Verdict.ADOPT, crm_value)
        return FieldDecision(Verdict.OVERWRITE if owned else Verdict.CONFLICT, crm_value)
    if same(result, written_value, desired):
        return FieldDecision(Verdict.UNCHANGED)
    return FieldDecision(Verdict.WRITE, written_value)


@dataclass
class StatusTally:
    """Status changes of one target object in one run, for the blast-radius guard."""

    records: int = 0
    changed: int = 0

    @property
    def share(self) -> float:
        """Share of the object's records whose status would change."""
        return self.changed / self.records if self.records else 0.0


@dataclass
class BlastRadiusGuard:
    """Holds a run that would change too many statuses at once.

    Only a change *from* a value counts: filling an empty status field for the first time is
    not a change of anyone's status.
    """

    max_share: float
    min_records: int
    tallies: dict[str, StatusTally] = field(default_factory=dict)

    def count(self, key: str, *, status_changed: bool) -> None:
        """Count one record of ``key`` (``target.Object``), and whether its status changes."""
        tally = self.tallies.setdefault(key, StatusTally())
        tally.records += 1
        if status_changed:
            tally.changed += 1

    def count_unchanged(self, key: str, n: int) -> None:
        """Count ``n`` records of ``key`` whose status does not change (not diffed again)."""
        self.tallies.setdefault(key, StatusTally()).records += n

    def verdict(self) -> str | None:
        """The reason to hold the run, or None when it may proceed."""
        over = [
            f"{key}: {t.changed:,} of {t.records:,} statuses ({t.share:.0%})"
            for key, t in sorted(self.tallies.items())
            if t.records >= self.min_records and t.share > self.max_share
        ]
        if not over:
            return None
        return (
            f"writeback held: this run would change more than {self.max_share:.0%} of statuses "
            f"({'; '.join(over)}); check the rules, preview with 'writeback --dry-run', "
            "then release with 'writeback --confirm'"
        )
