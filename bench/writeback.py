"""Benchmark: 100,000 changed contacts written back to the sandbox org, against a naive loop.

Run: ``python -m bench.writeback [records] [naive_sample]`` (defaults 100000 and 2000).

One process starts the local Salesforce sandbox (HTTPS, the real wire protocol) with enough
contacts, fills a SQLite store as a sync would (each contact with its current CRM values in
``extra['_crm']``) and an evaluation that changes every contact, then writes back:

* **outbox, Bulk API 2.0** — ``run_writeback`` with the shipped settings: batches of 10,000
  outbox rows, which the Salesforce connector sends as Bulk API 2.0 ingest jobs;
* **outbox, sObject Collections** — the same with the bulk threshold out of reach (200 records
  a call), on a second set of changed values;
* **naive** — simple-salesforce ``sf.Contact.update(id, {...})`` one record per call, on
  ``naive_sample`` other contacts, extrapolated linearly to ``records`` (said in the output);
* **kill -9** — for each path, a writeback in a forked child is killed (SIGKILL) after a random
  number of write calls; the figure is how many records the next run re-sends (outbox rows
  still open whose values the CRM already holds). Verdicts commit per API call, so it is at
  most one call's records: 200 (Collections) or one job (Bulk).

Each line gives wall time (diff + outbox + API + confirmation for the outbox paths), records/s,
API calls (as the sandbox counted them; logins excluded) and the ratio to the naive loop. Peak
RSS is the whole process, the in-process sandbox and its 100,000-contact org included.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from simple_salesforce import Salesforce

from connectors.salesforce import SalesforceConfig, SalesforceConnector
from sandbox import Sandbox
from sync_service.mapping.model import WritebackTarget
from sync_service.ops.memory import rss_mib
from sync_service.settings import WritebackSettings
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import contacts, evaluations, writeback_outbox
from sync_service.writeback import run_writeback
from sync_service.writeback.values import normalise

FIELDS = {
    "status": "Advocate_Status__c",
    "eligible": "Advocate_Eligible__c",
    "score": "Advocate_Score__c",
    "reason": "Advocate_Reason__c",
    "next_available": "Advocate_Next_Available__c",
}
TARGET = WritebackTarget(
    target="salesforce",
    entity="contact",
    object_name="Contact",
    fields=FIELDS,
    owned=True,
    override_field="Advocate_Override__c",
)
STATUSES = ("Eligible", "Fatigued", "Suspended", "Not Eligible")


@dataclass
class Result:
    name: str
    records: int
    seconds: float
    calls: int
    note: str = ""


def write_calls(sb: Sandbox) -> int:
    c = sb.api_calls
    return int(c["salesforce"])


def result_values(i: int, variant: int) -> dict[str, Any]:
    """Values that differ from the seeded CRM (and between variants) for every contact."""
    status = STATUSES[(i + variant) % len(STATUSES)]
    return {
        "status": status,
        "eligible": status == "Eligible",
        "score": float((i * 7 + variant) % 100),
        "reason": f"benchmark v{variant}: {status.lower()} ({i % 13} asks in 90 days)",
        "next_available": date(2026, 12, 1) + timedelta(days=i % 60)
        if status == "Fatigued"
        else None,
    }


def fill_store(engine: sa.Engine, sb: Sandbox, ids: list[str]) -> None:
    """What a sync leaves behind: each contact with its current writeback values in _crm."""
    now = datetime.now(UTC)
    wanted = set(ids)
    rows: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for rec in sb.org.iter_records("Contact"):
            if rec["Id"] not in wanted:
                continue
            crm = {f: rec.get(f) for f in (*FIELDS.values(), "Advocate_Override__c")}
            rows.append(
                {
                    "source": "salesforce",
                    "id": rec["Id"],
                    "account_id": rec["AccountId"],
                    "extra": {"_crm": crm},
                    "synced_at": now,
                    "deleted": False,
                }
            )
            if len(rows) == 5000:
                conn.execute(sa.insert(contacts), rows)
                rows = []
        if rows:
            conn.execute(sa.insert(contacts), rows)


def evaluate(engine: sa.Engine, ids: list[str], variant: int) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.delete(evaluations))
        for start in range(0, len(ids), 5000):
            conn.execute(
                sa.insert(evaluations),
                [
                    {
                        "entity_type": "contact",
                        "entity_id": rid,
                        **result_values(i, variant),
                        "details": {},
                        "policy_version": f"bench-{variant}",
                        "policy_hash": "bench",
                        "evaluated_at": now,
                    }
                    for i, rid in enumerate(ids[start : start + 5000], start)
                ],
            )


def connector_for(sb: Sandbox, bulk_threshold: int) -> SalesforceConnector:
    config = SalesforceConfig(
        login_url=sb.salesforce_url,
        auth_flow="client_credentials",
        client_id=sb.credentials["client_id"],
        client_secret=sb.credentials["client_secret"],
        ca_bundle=sb.ca_bundle,
        bulk_write_threshold=bulk_threshold,
        bulk_poll_seconds=0.05,
        bulk_poll_max=0.5,
    )
    return SalesforceConnector(config, session=sb.session())


def outbox_run(name: str, engine: sa.Engine, sb: Sandbox, n: int, bulk_threshold: int) -> Result:
    connector = connector_for(sb, bulk_threshold)
    settings = WritebackSettings(min_records_for_guard=10**9)  # a benchmark, not a bad rules edit
    before = write_calls(sb)
    t0 = time.perf_counter()
    report = run_writeback(engine, [TARGET], {"salesforce": connector}, settings)
    seconds = time.perf_counter() - t0
    connector.close()
    calls = write_calls(sb) - before
    written = report.counts["success"]
    if written + report.counts["overridden"] != n or report.problems():
        msg = f"{name}: {written} of {n} confirmed ({report.problems()})"
        raise SystemExit(msg)
    return Result(
        name,
        written,
        seconds,
        calls,
        note=f"{report.counts['overridden']} contacts with Advocate_Override__c set left alone",
    )


def _child_writeback(url: str, sb: Sandbox, bulk_threshold: int) -> None:
    engine = make_engine(url)
    connector = connector_for(sb, bulk_threshold)
    run_writeback(
        engine, [TARGET], {"salesforce": connector}, WritebackSettings(min_records_for_guard=10**9)
    )


def re_sent(engine: sa.Engine, sb: Sandbox) -> tuple[int, int]:
    """(open outbox rows, of which the CRM already holds the values: the next run's re-sends)."""
    results = {field: result for result, field in FIELDS.items()}
    with engine.connect() as conn:
        rows = list(
            conn.execute(
                sa.select(writeback_outbox.c.record_id, writeback_outbox.c.fields).where(
                    writeback_outbox.c.state != "done"
                )
            )
        )
    applied = 0
    for record_id, fields in rows:
        rec = sb.record("Contact", record_id) or {}
        if all(
            normalise(results[f], rec.get(f)) == normalise(results[f], v) for f, v in fields.items()
        ):
            applied += 1
    return len(rows), applied


def kill_run(
    name: str, url: str, engine: sa.Engine, sb: Sandbox, bulk_threshold: int, kind: str, after: int
) -> str:
    """Kill a writeback child after ``after`` calls of ``kind``; say what the next run re-sends."""
    base = sb.api_calls[kind]
    engine.dispose()  # the child gets no pooled connection of ours
    child = multiprocessing.get_context("fork").Process(
        target=_child_writeback, args=(url, sb, bulk_threshold)
    )
    child.start()
    while child.is_alive() and sb.api_calls[kind] - base < after:
        time.sleep(0.002)
    killed = child.is_alive() and child.pid is not None
    if killed and child.pid is not None:
        os.kill(child.pid, signal.SIGKILL)
    child.join()
    if not killed:
        return f"{name}: the writeback ended (exit {child.exitcode}) before {after} calls"
    open_rows, applied = re_sent(engine, sb)
    return (
        f"{name}: killed after {after} {kind.split('.')[1]} calls; {open_rows:,} rows open, "
        f"{applied:,} of them already in the CRM (re-sent by the next run)"
    )


def finish(engine: sa.Engine, sb: Sandbox, bulk_threshold: int) -> None:
    """Run the writeback a killed one left to its end."""
    connector = connector_for(sb, bulk_threshold)
    settings = WritebackSettings(min_records_for_guard=10**9)
    report = run_writeback(engine, [TARGET], {"salesforce": connector}, settings)
    connector.close()
    if report.problems():
        raise SystemExit(f"the run after the kill failed: {report.problems()}")


def naive_run(sb: Sandbox, ids: list[str], n_total: int) -> Result:
    session = sb.session()
    token = session.post(
        f"{sb.salesforce_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sb.credentials["client_id"],
            "client_secret": sb.credentials["client_secret"],
        },
        timeout=30,
    ).json()
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        version=sb.api_version,
    )
    before = write_calls(sb)
    t0 = time.perf_counter()
    for i, rid in enumerate(ids):
        values = result_values(i, 9)
        body = {FIELDS[k]: v for k, v in values.items()}
        if body[FIELDS["next_available"]] is not None:
            body[FIELDS["next_available"]] = body[FIELDS["next_available"]].isoformat()
        sf.Contact.update(rid, body)
    seconds = time.perf_counter() - t0
    calls = write_calls(sb) - before
    scale = n_total / len(ids)
    return Result(
        "naive: sf.Contact.update per record",
        n_total,
        seconds * scale,
        math.ceil(calls * scale),
        note=f"measured on {len(ids):,} records ({calls:,} calls, {seconds:.1f} s), "
        f"extrapolated x{scale:.0f}",
    )


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 100_000
    sample = int(argv[1]) if len(argv) > 1 else 2000
    accounts = math.ceil((n + sample) / 4.8)
    print(f"starting the sandbox: {accounts:,} accounts ...", flush=True)
    with Sandbox(accounts=accounts, seed=3) as sb, tempfile.TemporaryDirectory() as tmp:
        all_ids = [r["Id"] for r in sb.org.iter_records("Contact")]
        if len(all_ids) < n + sample:
            raise SystemExit(f"the sandbox seeded {len(all_ids):,} contacts, need {n + sample:,}")
        ids, naive_ids = all_ids[:n], all_ids[n : n + sample]
        del all_ids
        engine = make_engine(f"sqlite:///{Path(tmp) / 'store.db'}")
        upgrade(engine)
        fill_store(engine, sb, ids)
        print(f"store filled: {n:,} contacts; writing back ...", flush=True)

        url = f"sqlite:///{Path(tmp) / 'store.db'}"
        rng = random.Random()
        kills = []
        evaluate(engine, ids, 7)
        kills.append(
            kill_run(
                "Collections",
                url,
                engine,
                sb,
                10**9,
                "salesforce.composite",
                rng.randint(3, max(3, min(45, n // 200 - 3))),
            )
        )
        finish(engine, sb, 10**9)
        evaluate(engine, ids, 8)
        kills.append(
            kill_run(
                "Bulk API 2.0",
                url,
                engine,
                sb,
                2000,
                "salesforce.jobs",
                rng.randint(3, max(3, min(40, n // 10_000 * 6))),
            )
        )
        finish(engine, sb, 2000)

        results = []
        evaluate(engine, ids, 1)
        results.append(outbox_run("outbox, Bulk API 2.0 (shipped settings)", engine, sb, n, 2000))
        evaluate(engine, ids, 2)
        results.append(outbox_run("outbox, sObject Collections only", engine, sb, n, 10**9))
        t0 = time.perf_counter()
        report = run_writeback(
            engine, [TARGET], {}, WritebackSettings(min_records_for_guard=10**9), dry_run=True
        )
        no_change = time.perf_counter() - t0
        naive = naive_run(sb, naive_ids, n)
        results.append(naive)
        engine.dispose()

        print()
        print(f"{n:,} changed contacts (2-5 changed fields each), sandbox over HTTPS, same process")
        print(f"{'path':<42} {'time s':>9} {'records/s':>10} {'API calls':>10} {'fewer calls':>12}")
        for r in results:
            ratio = naive.calls / r.calls if r.calls else float("inf")
            print(
                f"{r.name:<42} {r.seconds:>9.1f} {r.records / r.seconds:>10,.0f} "
                f"{r.calls:>10,} {ratio:>11,.0f}x"
            )
            if r.note:
                print(f"  ({r.note})")
        print(
            f"a run with no change: {report.counts['records']:,} records checked, "
            f"{report.counts['changed']} changed, 0 API calls, {no_change:.1f} s"
        )
        for line in kills:
            print(f"kill -9 mid-writeback: {line}")
        print(f"peak RSS {rss_mib():,.0f} MiB (process, sandbox included)")


if __name__ == "__main__":
    main(sys.argv[1:])
