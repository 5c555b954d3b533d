"""Gainsight NXT connector: Company, Person, survey answers and any mapped object.

Split by job: ``config`` (settings), ``session`` (the HTTP session), ``errors`` (the one
translation of answers into :mod:`canonical.errors`), ``budget`` (per-minute pacing and the
daily stop), ``client`` (one call = budget + request + translation, retried under
:mod:`connectors.retry`), ``query`` (request bodies), ``streams`` (incremental reads),
``writer`` (updates, 50 a call) and ``connector`` (the :class:`~connectors.base.Connector`).
"""

from __future__ import annotations

from connectors.base import INVALID_KEY
from connectors.gainsight.budget import CallBudget
from connectors.gainsight.config import GainsightConfig
from connectors.gainsight.connector import GainsightConnector
from connectors.gainsight.session import build_session
from connectors.gainsight.streams import GainsightStream

__all__ = [
    "INVALID_KEY",
    "CallBudget",
    "GainsightConfig",
    "GainsightConnector",
    "GainsightStream",
    "build_session",
]
