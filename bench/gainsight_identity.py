"""Benchmark: set-based identity matching (full and incremental) vs a naive per-row loop.

Run: ``python -m bench.gainsight_identity [N] [--change PCT] [--cycles C] [--no-naive]``
(N Salesforce contacts and N Gainsight people, N/2 companies and N NPS answers; default 20,000) on a
temporary SQLite store, or on PostgreSQL with ``BENCH_DATABASE_URL``. Prints records/s, SQL
statements, peak RSS and the speed-up over the naive baseline, which does what a first draft
would: load the Salesforce e-mails into a dict and update each Gainsight person with its own
UPDATE. Then a steady-state cycle: PCT % of the records change as the ingest writes them
(with their change marks), and the linking of that change is timed incrementally and, after
another change of the same size, in full (``full=True``, what the reconciliation runs); C
times each way, alternately, and the medians compared.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from sync_service.ops.memory import rss_mib
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import accounts, contacts, nps_responses
from sync_service.store.upsert import upsert
from sync_service.sync import changes
from sync_service.sync.identity import IdentityResult, link_identities

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


def change(engine: sa.Engine, n: int, pct: float, rnd: random.Random) -> int:
    """Change ``pct`` % of the records as the ingest writes them; return how many rows.

    Salesforce contacts get another (sometimes a shared, ambiguous) e-mail, a tenth of as many
    are deleted and added; Gainsight people are read again (their carried ids overwrite the
    links), some with a new e-mail; new NPS answers arrive.
    """
    k = max(1, int(n * pct / 100))
    with engine.connect() as conn:
        sf = conn.execute(
            sa.select(contacts).where(contacts.c.source == "salesforce", ~contacts.c.deleted)
        ).mappings()
        sf_rows = [dict(r) for r in rnd.sample(list(sf), k + k // 10)]
        people = conn.execute(sa.select(contacts.c.id).where(contacts.c.source == "gainsight"))
        person_ids = rnd.sample(list(people.scalars()), k)
    tag = rnd.randrange(10**9)
    for i, row in enumerate(sf_rows[:k]):
        row["email"] = f"moved{tag}.{i}@example.com" if i % 5 else f"dup{i % 7}@example.com"
    for row in sf_rows[k:]:
        row["deleted"] = True
    sf_rows += [
        {
            "source": "salesforce",
            "id": f"003{tag % 10**6:06d}{i:09d}",
            "email": f"user{rnd.randrange(n)}@example{rnd.randrange(97)}.com",
            "account_id": f"001{rnd.randrange(n // 2):015d}",
            "synced_at": NOW,
            "deleted": False,
        }
        for i in range(k // 10)
    ]
    gs_rows = [
        {
            "source": "gainsight",
            "id": pid,
            "email": f"user{rnd.randrange(n)}@example{rnd.randrange(97)}.com",
            "sf_contact_id": None,
            "synced_at": NOW,
            "deleted": False,
        }
        for pid in person_ids
    ]
    nps = [
        {
            "source": "gainsight",
            "id": f"N{tag}-{i}",
            "person_id": rnd.choice(person_ids),
            "email": f"user{rnd.randrange(n)}@example{rnd.randrange(97)}.com",
            "score": i % 11,
            "synced_at": NOW,
            "deleted": False,
        }
        for i in range(k)
    ]
    with engine.begin() as conn:
        for table, source, rows in (
            (contacts, "salesforce", sf_rows),
            (contacts, "gainsight", gs_rows),
            (nps_responses, "gainsight", nps),
        ):
            changes.write_marks(conn, changes.changed_marks(conn, table, source, rows, NOW))
            upsert(conn, table, rows)
    return len(sf_rows) + len(gs_rows) + len(nps)


def timed(engine: sa.Engine, *, full: bool) -> tuple[float, IdentityResult]:
    t0 = time.perf_counter()
    result = link_identities(engine, full=full)
    return time.perf_counter() - t0, result


def _times(seconds: list[float]) -> str:
    return " ".join(f"{t:.2f}" for t in seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gainsight_identity", description=__doc__.splitlines()[0]
    )
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="people (default 20000)")
    parser.add_argument(
        "--change", type=float, default=1.0, help="%% of records changed per cycle (default 1)"
    )
    parser.add_argument(
        "--cycles", type=int, default=3, help="changed cycles timed each way (default 3)"
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the per-row baseline")
    args = parser.parse_args()
    n = args.n
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
        naive_s = 0.0
        if not args.no_naive:
            t0 = time.perf_counter()
            naive(engine)
            naive_s = time.perf_counter() - t0
        naive_statements, statements = statements, 0
        reset(engine)
        set_s, result = timed(engine, full=True)
        full_statements = statements
        print(f"backend: {engine.dialect.name}; rows linked over: {rows:,} (N={n:,})")
        print(
            f"set-based: {set_s:.2f}s, {rows / set_s:,.0f} records/s, {full_statements} statements"
        )
        if not args.no_naive:
            print(
                f"naive (people only): {naive_s:.2f}s, {n / naive_s:,.0f} people/s, "
                f"{naive_statements} statements"
            )
            print(f"speed-up: {naive_s / set_s:.1f}x (set-based also links companies and NPS)")
        print("counts:", result.as_counts())
        rnd = random.Random(11)
        inc_times: list[float] = []
        full_times: list[float] = []
        for _ in range(args.cycles):  # alternately, so that both see the same load
            changed = change(engine, n, args.change, rnd)
            statements = 0
            inc_s, inc = timed(engine, full=False)
            inc_times.append(inc_s)
            inc_statements = statements
            change(engine, n, args.change, rnd)
            statements = 0
            full_s, _ = timed(engine, full=True)
            full_times.append(full_s)
        inc_s, full_s = statistics.median(inc_times), statistics.median(full_times)
        print(
            f"steady-state cycle: {args.change:g}% changed ({changed:,} rows written with marks), "
            f"median of {args.cycles}"
        )
        print(
            f"  incremental: {inc_s:.2f}s ({_times(inc_times)}), {inc_statements} statements, "
            f"scope {inc.scope}, full={inc.full}"
        )
        print(f"  full:        {full_s:.2f}s ({_times(full_times)}), {statements} statements")
        print(f"  speed-up: {full_s / inc_s:.1f}x")
        rss_mb = rss_mib()
        print(f"peak RSS: {rss_mb:.0f} MiB; API calls: 0 (store only)")
        engine.dispose()


if __name__ == "__main__":
    main()
