"""``sync-service serve``: run the scheduled jobs, and the HTTP API on ``SYNC_HTTP_HOST:PORT``.

The API (the Ask API, ``/healthz``, ``/readyz``, ``/metrics``, ``/docs``) is a FastAPI app served
by uvicorn in a thread of this process (see :mod:`sync_service.api`).

Shutdown (SIGTERM or SIGINT): no new job starts, the running ones see ``stop`` set and end after
the batch they are on (its rows and watermark committed), and the process exits 0. If they have
not ended within ``--shutdown-grace`` seconds the process exits 1 at once; a run left open that
way is closed by the next runner of that job, which resumes from the committed watermarks.
A second signal while stopping exits at once too.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from types import FrameType

from canonical.errors import SettingsError
from sync_service.api.server import ApiServer, build_state
from sync_service.commands.validate import preflight
from sync_service.context import AppContext
from sync_service.ops.logs import configure_logging
from sync_service.ops.scheduler import InFlight, JobRunner, build_scheduler, scheduled_next_runs

HELP = "run the scheduled jobs and the HTTP API (asks, health, metrics)"

log = logging.getLogger(__name__)

#: Kubernetes waits 30 s after SIGTERM before SIGKILL; finish well inside that by default.
DEFAULT_GRACE = 25.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help=f"on SIGTERM, wait this long for running jobs to commit (default {DEFAULT_GRACE:g})",
    )


def _hard_exit(code: int) -> None:
    # Worker threads are not daemons (a job must not be cut mid-transaction on a normal exit);
    # when the grace is spent, leave without joining them. The database rolls back whatever
    # transaction was open, and the lock's session ends with the process.
    logging.shutdown()
    os._exit(code)


def run(args: argparse.Namespace, ctx: AppContext, runner: JobRunner | None = None) -> int:
    """Serve until SIGTERM/SIGINT; return 0 after a clean stop.

    ``runner`` replaces the pipeline's ``run_job`` (tests serve fake jobs through it).
    """
    preflight(ctx)  # the checks of `validate`: refuse to start on any problem (exit 2)
    settings = ctx.settings
    configure_logging(settings)
    ctx.engine  # noqa: B018 - migrates the store to the newest schema before anything serves
    stop = threading.Event()
    in_flight = InFlight()
    scheduler = build_scheduler(ctx, stop=stop, in_flight=in_flight, runner=runner)

    signals: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Only append here: setting an Event from a signal handler can deadlock on its lock.
        signals.append(signum)
        if len(signals) > 1:
            # A second signal: leave now. No logging here (its locks may be held by the very
            # code this handler interrupted); a raw write is safe.
            os.write(2, b"second signal: exiting now; the next run resumes\n")
            os._exit(1)

    try:
        http = ApiServer(
            build_state(ctx, lambda: bool(scheduler.running) and not stop.is_set()),
            settings.http_host,
            settings.http_port,
        ).start()
    except OSError as exc:
        msg = (
            f"cannot listen on {settings.http_host}:{settings.http_port} ({exc.strerror}); "
            "set SYNC_HTTP_HOST / SYNC_HTTP_PORT to a free address"
        )
        raise SettingsError(msg) from None
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    scheduler.start()
    next_runs = {
        job: when.isoformat() if when else None
        for job, when in scheduled_next_runs(scheduler).items()
    }
    log.info(
        "serving",
        extra={
            "jobs": next_runs,
            "http_host": http.host,
            "http_port": http.port,
            "pid": os.getpid(),
        },
    )
    # Tests and supervisors read the port from here when SYNC_HTTP_PORT=0.
    print(f"serving on port {http.port}", flush=True)
    try:
        while not signals:
            time.sleep(0.1)
        log.info(
            "stopping: running jobs finish their current batch",
            extra={"signal": signal.Signals(signals[0]).name, "running": in_flight.running()},
        )
        stop.set()
        scheduler.shutdown(wait=False)  # no new job starts; queued ones see stop and return
        if not in_flight.wait_idle(timeout=args.shutdown_grace):
            log.error(
                "jobs still running after %.0f s; exiting without them (the next run resumes)",
                args.shutdown_grace,
                extra={"running": in_flight.running()},
            )
            _hard_exit(1)
        if in_flight.failed_while_stopping:
            log.error(
                "stopped; job(s) failed on the way out: %s (the next start repairs and resumes)",
                ", ".join(in_flight.failed_while_stopping),
            )
            return 1
        log.info("stopped cleanly")
        return 0
    finally:
        http.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
