"""The speed paths, and the one switch that turns any of them off for its plain reference twin.

A speed path does a hot job in a way that is faster than the obvious one and harder to read.
Each lives in a module of its own whose docstring says what it speeds up, by how much (figures
in ``BENCHMARKS.md``) and which plain path it stands in for; twin tests prove the two give the
same results. Should one ever be suspected, ``SYNC_SPEED_PATHS_OFF`` turns it off without a
code change: a comma-separated list of the names below, or ``all``. An unknown name is a
settings error (exit 2), never ignored.

=====================  ====================================================  ==================
name                   module                                                reference twin
=====================  ====================================================  ==================
``sqlite_memstatus``   ``sync_service/store/sqlite_library.py``              SQLite's defaults
``upsert_fast_path``   ``sync_service/store/upsert_fast_path.py``            SQLAlchemy upsert
``deferred_indexes``   ``sync_service/store/initial_load.py``                indexes kept
``bulk_csv_rows``      ``connectors/salesforce/csv_rows.py``                 per-cell CSV loop
``gc_threshold``       ``sync_service/sync/gc_pause.py``                     Python's thresholds
``reader_pragmas``     ``sync_service/evaluate/features/reader_pragmas.py``  the engine's cache
``guard_ledger``       ``sync_service/store/ledger.py``                      SQLAlchemy Core
``consent_distinct``   ``sync_service/evaluate/features/consent_flags.py``   regexes per row
=====================  ====================================================  ==================
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from canonical.errors import SettingsError

#: The environment variable naming the speed paths to turn off.
SPEED_PATHS_OFF = "SYNC_SPEED_PATHS_OFF"

#: Every speed path, by name: what it speeds up.
SPEED_PATHS: dict[str, str] = {
    "sqlite_memstatus": "SQLite's memory statistics switched off (threads reading side by side)",
    "upsert_fast_path": "SQLite upserts as driver tuples in multi-row INSERTs",
    "deferred_indexes": "a table's first load builds its secondary indexes once, at the end",
    "bulk_csv_rows": "Bulk API 2.0 CSV rows built by one generated dict display per page",
    "gc_threshold": "the cyclic garbage collector run less often while a sync streams rows",
    "reader_pragmas": "a small SQLite page cache on the features' reading connections",
    "guard_ledger": "the guard's two lookups compiled once and run on the driver's cursor",
    "consent_distinct": "the consent_<type> features computed once per distinct consent value",
}


def speed_path_on(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the speed path ``name`` is on (it is unless ``SYNC_SPEED_PATHS_OFF`` names it).

    Args:
        name: one of :data:`SPEED_PATHS`.
        env: the environment (``os.environ`` when None).

    Raises:
        SettingsError: when ``SYNC_SPEED_PATHS_OFF`` names a path that does not exist.
    """
    if name not in SPEED_PATHS:  # a caller's typo, not a user's
        msg = f"no speed path named {name!r}"
        raise ValueError(msg)
    raw = (os.environ if env is None else env).get(SPEED_PATHS_OFF, "")
    off = {part.strip().lower() for part in raw.split(",") if part.strip()}
    unknown = sorted(off - set(SPEED_PATHS) - {"all"})
    if unknown:
        msg = (
            f"{SPEED_PATHS_OFF}: unknown speed path {', '.join(unknown)}; "
            f"use 'all' or any of {', '.join(SPEED_PATHS)}"
        )
        raise SettingsError(msg)
    return not off & {"all", name}
