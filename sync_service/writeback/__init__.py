"""Writeback: the results the rules produced, into the CRM fields sales reps see.

The flow, one module per step::

    evaluations ─► diff.py ─► outbox.py ─► apply.py ─► Connector.write
                     │  guards.py: override, drift, blast radius
                     └ values.py: one normal form per result     audit.py: writeback_log

Only fields named in a writeback target are written; nothing counts as written until the CRM
confirmed it; no change, no API call. :func:`run_writeback` runs it all.
"""

from __future__ import annotations

from sync_service.writeback.audit import history
from sync_service.writeback.report import WritebackReport
from sync_service.writeback.runner import run_writeback
from sync_service.writeback.targets import WritebackTargetLike

__all__ = ["WritebackReport", "WritebackTargetLike", "history", "run_writeback"]
