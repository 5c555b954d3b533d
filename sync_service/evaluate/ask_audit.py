"""The ask audit: every check and every logged ask, with who asked, when, and the answer.

A logged ask's audit row is written in the ask's own transaction (never one without the other).
Checks are many and change nothing, so their rows are buffered and written in batches by a
background thread (every ``interval`` seconds, or sooner when ``batch`` rows are waiting): a
check costs no write of its own, and a crash loses at most the last interval's check rows.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sync_service.store.models import ask_audit

if TYPE_CHECKING:
    from sync_service.evaluate.guard import AskTarget, Caller

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditRow:
    """One row of ``ask_audit``."""

    at: datetime
    action: str
    result: str
    team: str | None
    token_name: str | None
    contact_id: str | None
    account_id: str | None
    ask_type: str | None
    reasons: list[str] | None = None
    ask_id: str | None = None
    requested_by: str | None = None
    override_reason: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The row to insert (a shallow copy: ``asdict`` deep-copies, at a cost per check)."""
        return {f.name: getattr(self, f.name) for f in _FIELDS}

    @classmethod
    def of(
        cls,
        at: datetime,
        action: str,
        result: str,
        who: Caller,
        target: AskTarget,
        contact_id: str | None,
        account_id: str | None,
        *,
        reasons: list[str] | None = None,
        ask_id: str | None = None,
        requested_by: str | None = None,
        override_reason: str | None = None,
        broken: list[str] | None = None,
    ) -> AuditRow:
        """A row for ``who`` asking about ``target``; an override lists the rules it broke."""
        if broken:
            reasons = [*(reasons or []), f"broken: {', '.join(broken)}"]
        return cls(
            at,
            action,
            result,
            target.team or who.team,
            who.token_name,
            contact_id,
            account_id,
            target.ask_type,
            reasons,
            ask_id,
            requested_by,
            override_reason,
        )


_FIELDS = fields(AuditRow)


class AuditSink:
    """Writes audit rows: at once in a caller's transaction, or buffered for checks.

    Args:
        engine: the store.
        interval: seconds between background flushes (0: no thread; write on every add).
        batch: flush as soon as this many rows wait.
    """

    def __init__(self, engine: Engine, *, interval: float = 0.5, batch: int = 500) -> None:
        self.engine = engine
        self.interval = interval
        self.batch = batch
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        if interval > 0:
            self._thread = threading.Thread(target=self._run, name="ask-audit", daemon=True)
            self._thread.start()

    def write(self, conn: Connection, row: AuditRow) -> None:
        """Insert ``row`` in the caller's transaction."""
        conn.execute(sa.insert(ask_audit), [row.as_row()])

    def add(self, row: AuditRow) -> None:
        """Queue ``row`` for the next flush (written now when there is no flush thread)."""
        with self._lock:
            self._rows.append(row.as_row())
            full = len(self._rows) >= self.batch
        if self._thread is None:
            self.flush()
        elif full:
            self._wake.set()

    def flush(self) -> int:
        """Write the queued rows; return how many."""
        with self._lock:
            rows, self._rows = self._rows, []
        if rows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(ask_audit), rows)
        return len(rows)

    def close(self) -> None:
        """Stop the thread and write what is queued."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except sa.exc.SQLAlchemyError as exc:
                # The rows are lost for this flush; checks go on. Logged asks are unaffected.
                log.warning("ask audit: could not write check rows (%s)", type(exc).__name__)
