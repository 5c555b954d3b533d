"""Serve the app under uvicorn in a background thread of ``serve`` (or a test).

The socket is bound before the thread starts, so a taken port fails at once with a clear error
and port 0 gives a free port known immediately.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable

import uvicorn

from sync_service.api.app import create_app
from sync_service.api.ratelimit import RateLimiter
from sync_service.api.state import ApiState, PolicyCache
from sync_service.api.tokens import TokenCache
from sync_service.context import AppContext
from sync_service.evaluate.ask_audit import AuditSink
from sync_service.evaluate.guard import Guard
from sync_service.mapping.asks import AskFields
from sync_service.ops.metrics import build_registry
from sync_service.ops.runs import utcnow
from sync_service.report.build import ReportOptions, options_from_settings
from sync_service.report.metrics import AdvocateCollector
from sync_service.report.web import ReportSource

log = logging.getLogger(__name__)


def build_state(ctx: AppContext, scheduler_running: Callable[[], bool] | None = None) -> ApiState:
    """The app's state from the settings: store, guard, tokens, limits, metrics, privacy key."""
    settings = ctx.settings
    engine = ctx.engine
    try:
        fields = AskFields.from_mapping(ctx.mappings().salesforce)
    except Exception:  # no valid mappings yet: asks stay in the store until there are
        log.warning("asks: no valid Salesforce mapping; logged asks are kept in the store only")
        fields = None
    guard = Guard(
        engine,
        PolicyCache(settings.rules_file, ctx.var_dir / "rules.last-valid.yaml"),
        fields,
        AuditSink(engine),
        utcnow,
    )
    api = settings.api
    return ApiState(
        engine=engine,
        guard=guard,
        tokens=TokenCache(engine),
        limiter=RateLimiter(api.rate_limit_per_second, api.rate_limit_burst),
        registry=build_registry(
            engine, AdvocateCollector(engine, utcnow, window_days=settings.report.window_days)
        ),
        ops_token=api.ops_token.get_secret_value() if api.ops_token else None,
        scheduler_running=scheduler_running,
        report=ReportSource(engine, lambda: _report_options(ctx), utcnow),
        privacy_key=ctx.privacy_key,
    )


def _report_options(ctx: AppContext) -> ReportOptions:
    # read at each (cached) build: the mappings may change while serve runs
    try:
        mappings = ctx.mappings()
    except Exception:  # no valid mappings: the report's default fields still work
        mappings = None
    return options_from_settings(ctx.settings, mappings)


class ApiServer:
    """The app on ``host:port`` (0: any free port), served by uvicorn in a daemon thread."""

    def __init__(self, state: ApiState, host: str, port: int) -> None:
        self.state = state
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when
        # the socket says it is TCP, and with proto 0 each answer waited ~40 ms on the client's
        # delayed ACK (Nagle), capping a keep-alive client at ~23 requests/s.
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self._sock.listen(2048)
        self.host = host
        config = uvicorn.Config(
            create_app(state),
            log_config=None,  # the service's own logging (JSON lines or text) applies
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._sock.getsockname()[1])

    def start(self) -> ApiServer:
        """Serve in a daemon thread; returns self once uvicorn accepts requests."""

        def run() -> None:
            asyncio.run(self._server.serve(sockets=[self._sock]))

        self._thread = threading.Thread(target=run, name="http", daemon=True)
        self._thread.start()
        for _ in range(200):
            if self._server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.025)
        log.info("serving the API", extra={"host": self.host, "port": self.port})
        return self

    def stop(self) -> None:
        """Stop serving, flush the audit and close the socket."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.state.guard.audit.close()
        self._sock.close()
