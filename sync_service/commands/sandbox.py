"""``sync-service sandbox``.

Start the local Salesforce and Gainsight sandbox for a person to point a config at.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import socket
import threading
import time

from canonical.errors import SettingsError
from sandbox import Sandbox
from sync_service.commands.console import error
from sync_service.context import AppContext

HELP = "start the local Salesforce and Gainsight sandbox for a person to point a config at"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("--accounts", type=int, default=200, help="accounts to seed (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--port", type=int, default=8443, help="Salesforce port (default 8443; 0: any)"
    )
    parser.add_argument(
        "--gainsight-port", type=int, default=8444, help="Gainsight port (default 8444; 0: any)"
    )
    parser.add_argument(
        "--auth-flow",
        choices=("jwt", "client_credentials", "password", "token"),
        default="jwt",
        help="the Salesforce auth flow the printed variables use (default jwt)",
    )


def _check_port(option: str, port: int) -> None:
    """Fail fast, before seeding, when ``port`` is taken.

    Raises:
        SettingsError: the port is in use (or not ours to take).
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # the sandbox's server binds with SO_REUSEADDR too: a port in TIME_WAIT is fine
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            msg = (
                f"{option} {port}: cannot listen there ({exc.strerror}); is another sandbox "
                f"running? stop it or pass {option} with a free port (0: any)"
            )
            raise SettingsError(msg) from None


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Start the sandbox in the foreground until Ctrl-C."""
    if args.accounts < 1:
        error("--accounts must be at least 1")
        return 2
    _check_port("--port", args.port)
    _check_port("--gainsight-port", args.gainsight_port)
    print(f"Seeding {args.accounts:,} accounts (seed {args.seed}) ...", flush=True)
    started = time.monotonic()

    def progress(step: str) -> None:
        print(f"  {time.monotonic() - started:5.1f} s  {step}", flush=True)

    sandbox = Sandbox(
        accounts=args.accounts,
        seed=args.seed,
        port=args.port,
        gainsight_port=args.gainsight_port,
        progress=progress,
    )
    try:
        sandbox.start()  # cleans up after itself if it fails
    except OSError as exc:  # a port taken between the check and the bind
        msg = f"cannot start the sandbox ({exc.strerror or exc}); pass free ports (0: any)"
        raise SettingsError(msg) from None
    sb = sandbox
    try:
        counts = ", ".join(f"{k} {v:,}" for k, v in sb.seed_counts.items())
        print(f"Salesforce: {sb.salesforce_url}  (login and instance URL)")
        print(f"Gainsight:  {sb.gainsight_url}")
        print(f"CA bundle:  {sb.ca_bundle}")
        print(f"Data:       {counts}")
        print()
        print("Point the service at it (these credentials live only as long as this process):")
        for name, value in sb.env(args.auth_flow).items():
            print(f"export {name}={shlex.quote(value)}")
        print()
        print("Press Ctrl-C to stop.", flush=True)
        stop = threading.Event()
        # Explicit handlers: a process started in the background inherits an ignored SIGINT,
        # and a container stops with SIGTERM.
        previous = {
            sig: signal.signal(sig, lambda _signum, _frame: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        print("Stopping the sandbox.", flush=True)
    finally:
        sandbox.stop()
    return 0
