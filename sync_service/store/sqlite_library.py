"""Speed path: the SQLite library's memory statistics off, once, before the first connection.

SQLite keeps allocation statistics by default (``SQLITE_CONFIG_MEMSTATUS``): every allocation
takes one process-wide mutex. The store reads and writes with the GIL released in several
threads (features read by two readers while the evaluation writes; a sync reads a batch while
the last one is written), and on that mutex they queue instead of running side by side: two
threads reading one table each took three times as long as one thread reading both. The
statistics also cost a single thread about a third of a string-heavy query. The service reads
none of them (``sqlite3_memory_used``, soft heap limits), and SQLite's own documentation
recommends building without them.

Python's ``sqlite3`` module initialises the library when imported, after which the setting is
refused; it can only be changed while nothing uses the library: no connection open, no memory
held (which the statistics still report at that point). The library is shut down, configured
and initialised again then, or left as it is. A Python whose ``sqlite3`` carries its own copy
of the library (not the shared one found here) is simply left as it is too.

By how much (``BENCHMARKS.md``, rules, "SQLite's memory statistics off"): two threads reading
one table each took 4.2 s with the statistics on against 1.4 s for one thread reading both; a
single thread ran such a query (a ``group_concat`` over 500,000 rows) in 1.2 s instead of 1.9 s.

Switch: ``SYNC_SPEED_PATHS_OFF=sqlite_memstatus`` (see :mod:`canonical.speed_paths`), read when
the process makes its first SQLite engine. Reference twin: the library's defaults (statistics
on), exactly as Python's ``sqlite3`` leaves it; ``tests/store/test_sqlite_library.py`` runs the
same reads and writes both ways and gets the same results.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sqlite3
import threading

from canonical.speed_paths import speed_path_on

log = logging.getLogger(__name__)

_SQLITE_CONFIG_MEMSTATUS = 9
_SQLITE_OK = 0
_lock = threading.Lock()
_state: bool | None = None  # None: not tried yet; then whether the statistics are off


def memstatus_off() -> bool:
    """Switch the statistics off if it can be done safely now; whether they are off.

    Tried once per process; with the speed path switched off, nothing is tried.
    """
    global _state
    with _lock:
        if _state is None:
            _state = speed_path_on("sqlite_memstatus") and _switch_off()
        return _state


def _switch_off() -> bool:
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return False
    try:
        lib = ctypes.CDLL(name)
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        lib.sqlite3_libversion.restype = ctypes.c_char_p
        # the library sqlite3 uses, not another copy: same version, and initialised by the
        # import of sqlite3 (so it refuses the setting); an unused copy would take it
        if lib.sqlite3_libversion().decode() != sqlite3.sqlite_version:
            return False
        if lib.sqlite3_config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == _SQLITE_OK:
            return False
        # a connection open, or another thread that may open one: leave it alone
        if lib.sqlite3_memory_used() != 0 or threading.active_count() > 1:
            return False
        if lib.sqlite3_shutdown() != _SQLITE_OK:
            return False
        ok: bool = lib.sqlite3_config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == _SQLITE_OK
        lib.sqlite3_initialize()
        return ok
    except (OSError, AttributeError) as exc:  # no such library or symbol: keep the defaults
        log.debug("SQLite memory statistics left on: %s", exc)
        return False
