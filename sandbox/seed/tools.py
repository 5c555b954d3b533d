"""What every per-object seed function uses: a random stream with its clock, and a row sink."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sandbox.store import SALESFORCE, SandboxStore, quote


class Clock:
    """Fast timestamp strings for epoch seconds at or before ``now``."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = int(now.timestamp())
        self.today = self.now // 86400
        first = self.today - 4000
        epoch = dt.date(1970, 1, 1)
        self._first = first
        self._days = [
            (epoch + dt.timedelta(days=d)).isoformat() for d in range(first, self.today + 800)
        ]
        self._hms = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
        self._ss = [f"{x:02d}" for x in range(60)]

    def sf(self, epoch: int) -> str:
        """Salesforce datetime text."""
        day, sec = divmod(epoch, 86400)
        return (
            self._days[day - self._first]
            + "T"
            + self._hms[sec // 60]
            + self._ss[sec % 60]
            + ".000+0000"
        )

    def gs(self, epoch: int) -> str:
        """Gainsight datetime text."""
        day, sec = divmod(epoch, 86400)
        return (
            self._days[day - self._first]
            + "T"
            + self._hms[sec // 60]
            + self._ss[sec % 60]
            + ".000Z"
        )

    def date(self, days_from_today: int) -> str:
        """A date relative to today (negative: past)."""
        return self._days[self.today + days_from_today - self._first]


class Draw:
    """One random stream and the clock it stamps records with.

    Salesforce objects share one stream and Gainsight objects another, so the per-object
    functions must run in a fixed order: each one's draws depend on how many came before.
    """

    def __init__(self, random: Callable[[], float], clock: Clock) -> None:
        self.r = random
        self.clock = clock
        self.now = now = clock.now

        # A closure, not a method: it runs once or twice per seeded row.
        def stamp_after(created: int) -> int:
            # Most records were touched recently; some not for a long time.
            span = now - created
            return created + int(span * (1.0 - random() ** 3 * 0.999)) - 1 if span > 1 else created

        #: A last-modified time at or after ``created`` and before ``now``.
        self.stamp_after: Callable[[int], int] = stamp_after


class Sink:
    """The rows of one object, kept in chunks and stored in modstamp order at the end.

    Chunks go to a staging table, so memory is bounded by the chunk, not by the org.
    Modstamp order is roughly how an org's storage is laid out, and it makes incremental
    queries (``ORDER BY SystemModstamp``) read the table sequentially instead of hopping
    about it.
    """

    CHUNK = 50_000

    def __init__(
        self, store: SandboxStore, system: str, obj: str, columns: Sequence[str], stamp: str
    ) -> None:
        self.store = store
        self.table = store.table(system, obj)
        self.columns = columns
        self.order = f"{quote(stamp)}, {quote('Id' if system == SALESFORCE else 'Gsid')}"
        self.staging = quote(f"_staging_{obj}")
        self.rows: list[Sequence[Any]] = []
        self.count = 0
        cols = ", ".join(quote(c) for c in columns)
        store.execute(f"CREATE TABLE {self.staging} AS SELECT {cols} FROM {self.table} WHERE 0")

    def add(self, row: Sequence[Any]) -> None:
        """Keep one row."""
        self.rows.append(row)
        if len(self.rows) >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.store.insert_into(self.staging, self.columns, self.rows)
            self.count += len(self.rows)
            self.rows = []

    def finish(self) -> int:
        """Store every row in modstamp order; return how many."""
        self._flush()
        cols = ", ".join(quote(c) for c in self.columns)
        self.store.execute(
            f"INSERT INTO {self.table} ({cols}) SELECT {cols} FROM {self.staging} "
            f"ORDER BY {self.order}"
        )
        self.store.execute(f"DROP TABLE {self.staging}")
        return self.count
