"""Health, readiness and metrics over HTTP, served from a background thread (stdlib only).

- ``GET /healthz``: 200 while the process is alive and serving.
- ``GET /readyz``: 200 when the store answers, the scheduler runs (when there is one), no
  job's newest run failed and none went on with the last valid configuration because a
  mapping or rules edit was rejected; 503 otherwise. The JSON body says which check failed
  (``rejected_edit`` lists the problems), so the on-call person sees *what* is wrong, not only
  that something is. The decision is :func:`readiness`, a plain function any HTTP server calls.
- ``GET /metrics``: Prometheus text format (see :mod:`sync_service.ops.metrics`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from sqlalchemy.engine import Engine

from sync_service.ops.metrics import build_registry, render
from sync_service.store.models import runs

log = logging.getLogger(__name__)

#: Problems of a rejected edit shown in ``/readyz`` (``status`` shows them all).
REJECTED_SHOWN = 5


def readiness(
    engine: Engine, scheduler_running: Callable[[], bool] | None = None
) -> dict[str, Any]:
    """Check the store, the scheduler and each job's newest finished run.

    A job whose newest run used the last valid mappings or rules (an edit was rejected) makes
    the service not ready: it keeps running, but not what is on disk, and someone must fix the
    file. The problems are under ``rejected_edit`` (the first few; ``status`` lists them all).

    Returns:
        ``{"ready": bool, "store": "ok"|"unreachable", "scheduler": ..., "jobs": {job: status},
        "rejected_edit": {"jobs": [...], "problems": [...]}}`` (the last only when there is one).
    """
    report: dict[str, Any] = {"ready": True, "store": "ok", "jobs": {}}
    if scheduler_running is not None:
        report["scheduler"] = "running" if scheduler_running() else "stopped"
        if report["scheduler"] != "running":
            report["ready"] = False
    try:
        with engine.connect() as conn:
            newest = (
                sa.select(sa.func.max(runs.c.id))
                .where(runs.c.finished_at.is_not(None))
                .group_by(runs.c.job)
                .scalar_subquery()
            )
            rows = conn.execute(
                sa.select(
                    runs.c.job, runs.c.status, runs.c.finished_at, runs.c.config_errors
                ).where(runs.c.id.in_(newest))
            )
            rejected_jobs: list[str] = []
            problems: list[str] = []
            for job, status, finished_at, config_errors in rows:
                report["jobs"][job] = {"status": status, "finished_at": finished_at.isoformat()}
                if status == "failed":
                    report["ready"] = False
                if config_errors:
                    report["jobs"][job]["rejected_edit"] = len(config_errors)
                    rejected_jobs.append(job)
                    problems.extend(p for p in config_errors if p not in problems)
            if rejected_jobs:
                report["ready"] = False
                report["rejected_edit"] = {
                    "jobs": sorted(rejected_jobs),
                    "problems": problems[:REJECTED_SHOWN],
                    "total": len(problems),
                }
    except sa.exc.SQLAlchemyError as exc:
        report["store"] = "unreachable"
        report["ready"] = False
        log.warning("readiness: the store did not answer (%s)", type(exc).__name__)
    return report


class HealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` on ``port`` (0: any free port) in a thread."""

    def __init__(
        self,
        engine: Engine,
        port: int,
        *,
        host: str = "0.0.0.0",  # noqa: S104  (scraped from outside the container)
        scheduler_running: Callable[[], bool] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.engine = engine
        self.scheduler_running = scheduler_running
        self.registry = registry or build_registry(engine)
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful when 0 was asked for)."""
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="http",
            kwargs={"poll_interval": 0.2},
            daemon=True,
        )
        self._thread.start()
        log.info("serving /healthz, /readyz and /metrics", extra={"port": self.port})
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/healthz":
                        self._send(200, b"ok\n", "text/plain; charset=utf-8")
                    elif path == "/readyz":
                        report = readiness(server.engine, server.scheduler_running)
                        body = (json.dumps(report) + "\n").encode()
                        self._send(200 if report["ready"] else 503, body, "application/json")
                    elif path == "/metrics":
                        self._send(200, render(server.registry), CONTENT_TYPE_LATEST)
                    else:
                        self._send(404, b"not found\n", "text/plain; charset=utf-8")
                except Exception:
                    log.exception("HTTP %s failed", path)
                    self._send(500, b"internal error\n", "text/plain; charset=utf-8")

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                # Scrapes every few seconds would drown the log; keep them at DEBUG.
                log.debug("http " + format, *args)

        return Handler
