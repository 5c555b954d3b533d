"""``sync-service demo``: the whole job on the embedded default, in under a minute.

Starts the local CRM sandbox in-process, points the service at it, runs one full cycle (sync
both sources, evaluate, write back) into a fresh SQLite store, and prints what happened. Then
the guard: the Ask API on a loopback port, a team token, and asks logged for one eligible
contact until the API refuses one; the asks job sends the logged ones to the CRM.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rules.engine import MULTI_SELECT_SEP
from sync_service.commands.console import CycleSummary, emit_json, render, summarise
from sync_service.commands.report import write_for_store
from sync_service.context import AppContext
from sync_service.ops.runs import Run
from sync_service.pipeline import run_cycle

if TYPE_CHECKING:
    from sandbox import Sandbox

HELP = "start the sandbox in-process and run one full cycle on a fresh SQLite store"

DEFAULT_DB = Path("var/demo/advocate.db")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "--accounts", type=int, default=1000, help="accounts to seed (about 5 contacts each)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the sandbox data")
    parser.add_argument(
        "--database",
        type=Path,
        default=DEFAULT_DB,
        help=f"SQLite file to create afresh (default: {DEFAULT_DB})",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def fresh_sqlite(path: Path) -> str:
    """Remove a previous demo store (and its WAL files and snapshots); return its URL.

    The URL is absolute: ``--database`` is relative to the working directory, while a relative
    path in ``DATABASE_URL`` would be relative to the settings file's folder.
    """
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.iterdir():
        if leftover.name.startswith(path.name) or ".last-valid." in leftover.name:
            leftover.unlink()
    return f"sqlite:///{path}"


def run_demo(
    sandbox: Sandbox, database_url: str, config_path: str | None = None
) -> tuple[list[Run], CycleSummary]:
    """One cycle against a running sandbox; the runs and their summary.

    Only the settings file's non-secret settings apply; the credentials and URLs come from the
    sandbox, and the real connectors talk to it over HTTPS.
    """
    env = {**sandbox.env(), "DATABASE_URL": database_url}
    demo = AppContext(config_path=config_path, env=env)
    try:
        runs = run_cycle(demo)
        return runs, summarise(demo.engine, runs)
    finally:
        demo.close()


def run_guard_demo(
    sandbox: Sandbox, database_url: str, config_path: str | None = None
) -> tuple[list[str], int]:
    """Log asks through the API for one eligible contact until refused; the lines to print.

    The demo asks only for what the contact consented to (its Available For, as evaluated), so
    the refusal it shows is fatigue's: the rest period after the first ask.

    Returns the lines and the number of asks the CRM holds afterwards (sent by the asks job).
    """
    import requests
    import sqlalchemy as sa

    from sync_service.api.server import ApiServer, build_state
    from sync_service.api.tokens import create_token
    from sync_service.ops.runs import utcnow
    from sync_service.pipeline import asks_job
    from sync_service.store.models import evaluations

    env = {**sandbox.env(), "DATABASE_URL": database_url}
    demo = AppContext(config_path=config_path, env=env)
    lines: list[str] = []
    try:
        with demo.engine.connect() as conn:
            found = conn.execute(
                sa.select(evaluations.c.entity_id, evaluations.c.available_for)
                .where(
                    evaluations.c.entity_type == "contact",
                    evaluations.c.status == "Eligible",
                    evaluations.c.available_for.is_not(None),
                )
                .order_by(evaluations.c.score.desc(), evaluations.c.entity_id)
                .limit(1)
            ).first()
        if found is None:
            return ["guard: no eligible contact in this org; nothing to ask"], 0
        contact = found.entity_id
        allowed = [t for t in str(found.available_for).split(MULTI_SELECT_SEP) if t]
        # Each consented type once, then the first again: the rest period refuses by then.
        kinds = [*allowed, allowed[0]]
        _, token = create_token(
            demo.engine, team="Marketing", name="demo-marketing", role="team", now=utcnow()
        )
        server = ApiServer(build_state(demo), "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{server.port}"
        lines.append(f"guard: the Ask API on {base} (OpenAPI at {base}/docs)")
        logged: list[str] = []
        try:
            with requests.Session() as http:
                http.headers["Authorization"] = f"Bearer {token}"
                for kind in kinds:
                    body = {"contact_id": contact, "ask_type": kind, "requested_by": "demo"}
                    r = http.post(f"{base}/v1/asks", json=body, timeout=30)
                    if r.status_code == 201:
                        logged.append(r.json()["id"])
                        lines.append(f"  POST /v1/asks {kind:<15} -> 201 logged {r.json()['id']}")
                        continue
                    lines.append(
                        f"  POST /v1/asks {kind:<15} -> {r.status_code} {r.json()['detail']}"
                    )
                    nxt = r.json().get("next_available")
                    if nxt:
                        lines.append(f"  {contact} can be asked again from {nxt}")
                    break
        finally:
            server.stop()
        sent = asks_job(demo)
        created = int(sent.counts.get("asks.created", 0))
        lines.append(
            f"  the asks job created {created} of {len(logged)} logged ask(s) in Salesforce "
            "as Reference_Request__c (Guard_Status__c Clear)"
        )
        return lines, created
    finally:
        demo.close()


def _ids_to_try(summary: CycleSummary) -> list[tuple[str, str]]:
    """Two contacts worth explaining: the most asked one, and one with another status."""
    picked: list[tuple[str, str]] = []
    statuses: set[str] = set()
    for c in summary.most_asked:
        if c["status"] in statuses:
            continue
        statuses.add(c["status"])
        who = f"{c['name'] or 'a contact'}, {c['asks']} asks, {c['status']}"
        picked.append((c["contact_id"], who))
        if len(picked) == 2:
            break
    return picked


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Run the demo cycle and print its summary."""
    from sandbox import Sandbox
    from sync_service.ops.logs import configure_logging

    # The summary is the demo's output; only warnings and errors are worth a line beside it.
    configure_logging(ctx.settings.model_copy(update={"log_level": "WARNING"}))
    started = time.monotonic()
    url = fresh_sqlite(args.database)
    print(f"starting the CRM sandbox with {args.accounts:,} accounts ...", flush=True)
    with Sandbox(accounts=args.accounts, seed=args.seed) as sandbox:
        print(f"salesforce {sandbox.salesforce_url}, gainsight {sandbox.gainsight_url}", flush=True)
        runs, summary = run_demo(sandbox, url, ctx.config_path)
        guard_lines, _ = run_guard_demo(sandbox, url, ctx.config_path)
    report = write_for_store(url, ctx.config_path, args.database.parent / "report.html")
    elapsed = time.monotonic() - started
    if args.json:
        out = {**summary.as_dict(), "guard": guard_lines}
        emit_json({**out, "seconds": round(elapsed, 1), "database": url, "report": str(report)})
    else:
        print()
        print(render(summary, elapsed))
        print()
        print("\n".join(guard_lines))
        print(f"\nstore: {url}")
        tries = _ids_to_try(summary)
        if tries:
            print("Try `explain` on the store (each shows why the status is what it is):")
            for entity_id, who in tries:
                print(f"  DATABASE_URL={url} sync-service explain {entity_id}   # {who}")
        print(f"program report: {report}  (open it in a browser; sync-service report redraws it)")
    return 0 if all(r.status == "success" for r in runs) else 1
