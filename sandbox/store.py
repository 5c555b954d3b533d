"""The sandbox's storage: one SQLite database, one table per object, one lock.

A single connection behind a re-entrant lock keeps this simple and fast enough: SQLite does
the filtering and sorting, the HTTP threads do the JSON and CSV work outside the lock. The
database is a file in the sandbox's temporary folder so that a 1M-contact org lives in the page
cache, not in the Python heap of the process that embeds the sandbox.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sandbox.schema import ObjectDef, gainsight_objects, salesforce_objects

SALESFORCE = "salesforce"
GAINSIGHT = "gainsight"

#: Indexes made after seeding (building them once is faster than maintaining them per insert).
_INDEXES: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    (SALESFORCE, "Account"): (("SystemModstamp", "Id"),),
    (SALESFORCE, "Contact"): (("SystemModstamp", "Id"), ("AccountId",)),
    (SALESFORCE, "Opportunity"): (("SystemModstamp", "Id"),),
    (SALESFORCE, "Case"): (("SystemModstamp", "Id"),),
    (SALESFORCE, "Reference_Request__c"): (("SystemModstamp", "Id"),),
    (GAINSIGHT, "Company"): (("ModifiedDate", "Gsid"),),
    (GAINSIGHT, "Person"): (("ModifiedDate", "Gsid"),),
    (GAINSIGHT, "SurveyUserAnswer"): (("ModifiedDate", "Gsid"),),
    (GAINSIGHT, "Advocacy_Program__gc"): (("ModifiedDate", "Gsid"),),
}


def gainsight_path(path: Path) -> Path:
    """Where the Gainsight tables of the database at ``path`` live."""
    return path.with_name(path.stem + "-gainsight" + path.suffix)


def quote(name: str) -> str:
    """An SQL identifier (field names come from the schema, never from a request verbatim)."""
    return '"' + name.replace('"', '""') + '"'


class SandboxStore:
    """Tables and the connection; every access goes through ``lock``."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool = True,
        systems: tuple[str, ...] = (SALESFORCE,),
    ) -> None:
        """Open (and with ``create``, make the tables of ``systems`` in) the database at ``path``.

        Gainsight's tables live in a second file, ``gainsight_path(path)``, so that they can be
        seeded by another process at the same time; ``attach_gainsight`` joins it in.
        """
        self.path = path
        self.systems = systems
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._pragmas("main")
        self.schemas: dict[str, dict[str, ObjectDef]] = {
            SALESFORCE: salesforce_objects(),
            GAINSIGHT: gainsight_objects(),
        }
        self._gs_schema: str | None = None
        self._pending_keys: list[tuple[str, str, str]] = []
        if create:
            for system in systems:
                for obj in self.schemas[system].values():
                    self._create(system, obj)

    def _pragmas(self, schema: str) -> None:
        # A throwaway database: durability buys nothing, speed does.
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "cache_size=-131072",
            "locking_mode=EXCLUSIVE",
        ):
            self.conn.execute(f"PRAGMA {schema}.{pragma}")

    def attach_gainsight(self) -> None:
        """Attach the Gainsight file (seeded separately) to this connection."""
        with self.lock:
            self.conn.execute("ATTACH DATABASE ? AS gs", (str(gainsight_path(self.path)),))
            self._pragmas("gs")
            self._gs_schema = "gs"

    def table(self, system: str, obj: str) -> str:
        """The quoted table name of an object."""
        if system == SALESFORCE:
            return quote("sf_" + obj)
        if self._gs_schema is not None:
            return quote(self._gs_schema) + "." + quote("gs_" + obj)
        return quote("gs_" + obj)

    def _create(self, system: str, obj: ObjectDef) -> None:
        cols = []
        for f in obj.fields.values():
            col = f"{quote(f.name)} {f.sql_type}"
            if f.type == "boolean":
                col += " NOT NULL DEFAULT 0"
            cols.append(col)
        key = "Id" if system == SALESFORCE else "Gsid"
        self.conn.execute(f"CREATE TABLE {self.table(system, obj.name)} ({', '.join(cols)})")
        # The key's unique index comes after the seed: rows go in modstamp order, so building
        # it once is far cheaper than inserting ids at random places in it row by row.
        self._pending_keys.append((system, obj.name, key))

    def create_indexes(self) -> None:
        """Build the secondary indexes (after the bulk seed)."""
        with self.lock:
            self.conn.execute("PRAGMA threads=2")
            for system, obj, key in self._pending_keys:
                self.conn.execute(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(f'ux_{system}_{obj}')} "
                    f"ON {self.table(system, obj)} ({quote(key)})"
                )
            self._pending_keys.clear()
            for (system, obj), columns in _INDEXES.items():
                if system not in self.systems:
                    continue
                for cols in columns:
                    name = quote(f"ix_{system}_{obj}_{'_'.join(cols)}")
                    self.conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {name} ON {self.table(system, obj)} "
                        f"({', '.join(quote(c) for c in cols)})"
                    )
            # Sampled statistics: a full ANALYZE of a million-row org takes seconds.
            self.conn.execute("PRAGMA analysis_limit=1000")
            self.conn.execute("ANALYZE")

    def insert_rows(
        self, system: str, obj: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Insert rows given as tuples in ``columns`` order."""
        self.insert_into(self.table(system, obj), columns, rows)

    def insert_into(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Insert rows into the (quoted) ``table`` in one transaction."""
        cols = ", ".join(quote(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                self.conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows in one transaction."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                self.conn.executemany(sql, rows)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one statement under the lock and return every row."""
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement under the lock and return the first row (or None)."""
        with self.lock:
            return self.conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one writing statement under the lock; return the number of rows changed."""
        with self.lock:
            return self.conn.execute(sql, params).rowcount

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()
