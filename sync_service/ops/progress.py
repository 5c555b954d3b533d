"""The progress hook long stages report to (sync, evaluate, writeback).

Stages call ``progress(label, n, total)`` after each committed batch: ``n`` more units of
``label`` are done, out of ``total`` when the stage knows it (None when not). A stage never
knows how (or whether) it is shown: the CLI draws bars on a terminal, ``serve`` passes nothing.
"""

from __future__ import annotations

from typing import Protocol


class ProgressHook(Protocol):
    """Told after each committed batch of a long stage."""

    def __call__(self, label: str, n: int, total: int | None = None) -> None:
        """``n`` more units of ``label`` are done, out of ``total`` (None: unknown)."""
        ...
