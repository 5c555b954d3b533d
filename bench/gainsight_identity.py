"""Benchmark: set-based identity matching vs a naive per-row Python loop.

Run: ``python -m bench.gainsight_identity [N]`` (N Salesforce contacts and N Gainsight people,
N/2 companies and N NPS answers; default 20,000) on a temporary SQLite store, or on
PostgreSQL with ``BENCH_DATABASE_URL``. Prints records/s, SQL statements, peak RSS and the
speed-up over the naive baseline, which does what a first draft would: load the Salesforce
e-mails into a dict and update each Gainsight person with its own UPDATE.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import accounts, contacts, nps_responses
from sync_service.store.upsert import upsert
from sync_service.sync.identity import link_identities

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def seed(engine: sa.Engine, n: int) -> None:
    rnd = random.Random(7)
    sf_acc = [
        {"source": "salesforce", "id": f"001{i:015d}", "synced_at": NOW, "deleted": False}
        for i in range(n // 2)
    ]
    gs_acc = [
        {
            "source": "gainsight",
            "id": f"GC{i:08d}",
            "sf_account_id": f"001{i:015d}" if i % 10 else None,
            "synced_at": NOW,
            "deleted": False,
        }
        for i in range(n // 2)
    ]
    sf_con, gs_con, nps = [], [], []
    for i in range(n):
        email = f"user{i}@example{i % 97}.com" if i % 50 else f"dup{i % 7}@example.com"
        sf_con.append(
            {
                "source": "salesforce",
                "id": f"003{i:015d}",
                "email": email,
                "account_id": f"001{(i // 2):015d}",
                "synced_at": NOW,
                "deleted": False,
            }
        )
        shown = email.upper() if rnd.random() < 0.3 else f"  {email} "
        gs_con.append(
            {
                "source": "gainsight",
                "id": f"P{i:08d}",
                "email": shown,
                "sf_contact_id": f"003{i:015d}" if i % 3 == 0 else None,
                "synced_at": NOW,
                "deleted": False,
            }
        )
        nps.append(
            {
                "source": "gainsight",
                "id": f"N{i:08d}",
                "person_id": f"P{i:08d}" if i % 2 else None,
                "email": shown,
                "score": i % 11,
                "synced_at": NOW,
                "deleted": False,
            }
        )
    with engine.begin() as conn:
        for table, rows in (
            (accounts, sf_acc + gs_acc),
            (contacts, sf_con + gs_con),
            (nps_responses, nps),
        ):
            upsert(conn, table, rows)


def reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        # Both contenders start from people without a carried contact id: all match by e-mail.
        conn.execute(
            contacts.update().where(contacts.c.source == "gainsight").values(sf_contact_id=None)
        )


def naive(engine: sa.Engine) -> int:
    """The per-row baseline: one SELECT of everything, one UPDATE per person."""
    with engine.begin() as conn:
        by_email: dict[str, list[str]] = {}
        for cid, email in conn.execute(
            sa.select(contacts.c.id, contacts.c.email).where(contacts.c.source == "salesforce")
        ):
            if email:
                by_email.setdefault(email.strip().lower(), []).append(cid)
        people = conn.execute(
            sa.select(contacts.c.id, contacts.c.email).where(contacts.c.source == "gainsight")
        ).all()
        done = 0
        for pid, email in people:
            match = by_email.get((email or "").strip().lower(), [])
            if len(match) == 1:
                conn.execute(
                    contacts.update()
                    .where(contacts.c.source == "gainsight", contacts.c.id == pid)
                    .values(sf_contact_id=match[0])
                )
                done += 1
        return done


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    url = os.environ.get("BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        seed(engine, n)
        statements = 0

        def count(*_: object) -> None:
            nonlocal statements
            statements += 1

        sa.event.listen(engine, "before_cursor_execute", count)
        rows = n // 2 + 2 * n
        reset(engine)
        t0 = time.perf_counter()
        naive(engine)
        naive_s = time.perf_counter() - t0
        naive_statements, statements = statements, 0
        reset(engine)
        t0 = time.perf_counter()
        result = link_identities(engine)
        set_s = time.perf_counter() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"backend: {engine.dialect.name}; rows linked over: {rows:,} (N={n:,})")
        print(f"set-based: {set_s:.2f}s, {rows / set_s:,.0f} records/s, {statements} statements")
        print(
            f"naive (people only): {naive_s:.2f}s, {n / naive_s:,.0f} people/s, "
            f"{naive_statements} statements"
        )
        print(f"speed-up: {naive_s / set_s:.1f}x (set-based also links companies and NPS)")
        print(f"peak RSS: {rss_mb:.0f} MiB; API calls: 0 (store only)")
        print("counts:", result.as_counts())
        engine.dispose()


if __name__ == "__main__":
    main()
