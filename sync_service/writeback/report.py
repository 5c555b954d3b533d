"""What a writeback run did: figures for the run record, samples and problems for people."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: How many samples, conflicts and failures a report keeps (the counts are always complete).
SAMPLE_LIMIT = 10

#: Report counters that go into ``run.counts`` as ``writeback.<name>``.
RUN_COUNTERS: tuple[str, ...] = (
    "records",
    "not_rediffed",
    "changed",
    "unchanged",
    "enqueued",
    "success",
    "failed",
    "retried",
    "pending",
    "conflicts",
    "overwritten",
    "overridden",
    "adopted",
    "blocked",
    "missing",
    "fields_written",
    "calls",
)


@dataclass(frozen=True)
class Sample:
    """One record's change: CRM field -> (old, new)."""

    target: str
    object_name: str
    record_id: str
    changes: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class Conflict:
    """A field a person changed since the service's last confirmed write."""

    target: str
    object_name: str
    record_id: str
    field: str
    written: Any
    current: Any
    desired: Any
    overwritten: bool


@dataclass(frozen=True)
class Failure:
    """A record the CRM refused for good, with its own code and message."""

    target: str
    object_name: str
    record_id: str
    code: str
    message: str


@dataclass
class WritebackReport:
    """Figures and examples of one writeback run (or dry run)."""

    dry_run: bool = False
    held: str | None = None
    stopped: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    field_counts: Counter[str] = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def add_sample(self, sample: Sample) -> None:
        """Keep ``sample`` if there is room."""
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(sample)

    def add_conflict(self, conflict: Conflict) -> None:
        """Count a conflict; keep it as an example if there is room."""
        self.counts["conflicts"] += 1
        if conflict.overwritten:
            self.counts["overwritten"] += 1
        if len(self.conflicts) < SAMPLE_LIMIT:
            self.conflicts.append(conflict)

    def add_failure(self, failure: Failure) -> None:
        """Count a permanent failure; keep it as an example if there is room."""
        self.counts["failed"] += 1
        if len(self.failures) < SAMPLE_LIMIT:
            self.failures.append(failure)

    def run_counts(self) -> dict[str, int]:
        """``writeback.<name>`` figures for ``run.counts``; zeros included for dashboards."""
        out = {f"writeback.{name}": int(self.counts.get(name, 0)) for name in RUN_COUNTERS}
        for key, n in sorted(self.field_counts.items()):
            out[f"writeback.field.{key}"] = int(n)
        return out

    def problems(self) -> str | None:
        """One line on what still needs attention, or None when everything was confirmed."""
        parts: list[str] = []
        if self.stopped:
            parts.append(self.stopped)
        if self.counts["failed"]:
            first = self.failures[0] if self.failures else None
            detail = f" (first: {first.record_id}: {first.code}: {first.message})" if first else ""
            parts.append(
                f"{self.counts['failed']:,} records refused by the CRM{detail}; fix the cause, "
                "then run 'writeback --retry-failed'"
            )
        if self.counts["pending"]:
            parts.append(f"{self.counts['pending']:,} records left pending for the next run")
        return "; ".join(parts) or None
