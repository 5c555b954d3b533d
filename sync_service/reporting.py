"""Human-readable summaries of runs for the terminal."""

from __future__ import annotations

from sync_service.runs import Run

_MARK = {"success": "ok", "partial": "PARTIAL", "failed": "FAILED", "held": "HELD"}


def print_run(run: Run) -> None:
    """One block per run: job, result, counts and API calls."""
    elapsed = ""
    if run.finished_at is not None:
        elapsed = f" in {(run.finished_at - run.started_at).total_seconds():.1f}s"
    print(f"{run.job}: {_MARK.get(run.status, run.status)}{elapsed} (run #{run.id})")
    if run.error:
        print(f"  {run.error}")
    for problem in run.config_errors:
        print(f"  rejected config edit: {problem}")
    labels = [*run.counts, *(f"api calls ({system})" for system in run.api_calls)]
    width = max([40, *map(len, labels)])  # per-field writeback counts have long names
    for key, value in sorted(run.counts.items()):
        shown = f"{value:>10,}" if isinstance(value, int) else str(value)
        print(f"  {key:<{width}} {shown}")
    for system, usage in sorted(run.api_calls.items()):
        used = usage.get("used")
        limit = usage.get("limit")
        budget = f", org usage {used:,}/{limit:,}" if used is not None and limit else ""
        label = f"api calls ({system})"
        print(f"  {label:<{width}} {usage.get('calls', 0):>10,}{budget}")
