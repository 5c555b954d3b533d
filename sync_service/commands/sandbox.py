"""``sync-service sandbox``.

Start the local Salesforce and Gainsight sandbox for a person to point a config at.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import threading
import time

from sandbox import Sandbox
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


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Start the sandbox in the foreground until Ctrl-C."""
    if args.accounts < 1:
        print("error: --accounts must be at least 1")
        return 2
    print(f"Seeding {args.accounts:,} accounts (seed {args.seed}) ...", flush=True)
    started = time.monotonic()

    def progress(step: str) -> None:
        print(f"  {time.monotonic() - started:5.1f} s  {step}", flush=True)

    with Sandbox(
        accounts=args.accounts,
        seed=args.seed,
        port=args.port,
        gainsight_port=args.gainsight_port,
        progress=progress,
    ) as sb:
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
    return 0
