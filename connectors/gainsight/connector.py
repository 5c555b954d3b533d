"""The Gainsight connector: streams, writer and API usage behind :class:`connectors.base.Connector`.

Usage::

    config = GainsightConfig(base_url=..., access_key=...)
    with GainsightConnector(config, build_session(config)) as gs:
        for batch in gs.stream(spec).read(cursor, until):
            ...

Writes are off by default (``writes_enabled=False``): the writeback path turns them on when
``gainsight.writeback_enabled`` is set; until then :meth:`write` refuses every record as data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

import requests

from canonical.model import System
from connectors.base import ApiUsage, Connector, RecordChange, StreamSpec, WriteResult
from connectors.gainsight.budget import CallBudget
from connectors.gainsight.client import GainsightClient
from connectors.gainsight.config import GainsightConfig
from connectors.gainsight.session import build_session
from connectors.gainsight.streams import STREAM_CLASSES, GainsightStream
from connectors.gainsight.writer import GainsightWriter


class GainsightConnector(Connector):
    """One Gainsight tenant.

    Args:
        config: the tenant and its limits.
        session: the injected HTTP session; built from ``config`` when omitted.
        budget: the call budget (tests inject one with a fake clock; the service may seed
            ``calls_today``); built from ``config`` when omitted.
        writes_enabled: allow :meth:`write` (off by default).
        sleep: how retries wait (tests pass a recorder).
    """

    system = System.GAINSIGHT

    def __init__(
        self,
        config: GainsightConfig,
        session: requests.Session | None = None,
        *,
        budget: CallBudget | None = None,
        writes_enabled: bool = False,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self._own_session = session is None
        self.session = session if session is not None else build_session(config)
        self.client = GainsightClient(config, self.session, budget=budget, sleep=sleep)
        self.writes_enabled = writes_enabled
        self.writer = GainsightWriter(self.client, config.write_keys)

    def stream(self, spec: StreamSpec) -> GainsightStream:
        """The stream for ``spec``: a declared class for known objects, else the generic one."""
        cls = STREAM_CLASSES.get(spec.object_name, GainsightStream)
        return cls(
            spec,
            self.client,
            page_size=self.config.page_size,
            lookback_seconds=self.config.filter_lookback_seconds,
        )

    def write(
        self,
        object_name: str,
        changes: Sequence[RecordChange],
        on_call: Callable[[list[WriteResult]], None] | None = None,
    ) -> list[WriteResult]:
        """Update records by ``config.write_keys``; one result per change (see writer.py).

        ``on_call`` receives each call's results as soon as the call answered.
        """
        if not self.writes_enabled:
            return [
                WriteResult(
                    c.record_id,
                    False,
                    code="WRITES_DISABLED",
                    message="Gainsight writeback is off; set gainsight.writeback_enabled: true",
                )
                for c in changes
            ]
        return self.writer.write(object_name, changes, on_call)

    def usage(self) -> ApiUsage:
        """Calls made by this connector, and today's count against the tenant's allowance."""
        b = self.client.budget
        return ApiUsage(
            calls=self.client.attempts,
            used=b.calls_today,
            limit=b.calls_per_day,
            extra={
                "budget_limit": b.daily_budget,
                "remaining_today": b.remaining_today,
                "pacing_waits": b.waits,
                "pacing_wait_seconds": round(b.waited_seconds, 3),
                "statuses": {str(k): v for k, v in sorted(self.client.statuses.items())},
            },
        )

    def close(self) -> None:
        """Close the session if the connector built it."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> GainsightConnector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
