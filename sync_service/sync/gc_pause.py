"""Speed path: fewer cyclic garbage collections while a sync streams rows.

A sync allocates millions of dicts and tuples (records, rows, parameters), none of them in
reference cycles: reference counting frees each as soon as its batch is written. Python's cyclic
collector still runs every 700 container allocations, and its older generations walk every live
object, holding the GIL the writing thread needs to go on: about 6 s of a 45 s bulk sync of
1.9M records went there. Within :func:`fewer_collections` the youngest generation's threshold
is 100,000 allocations: the collector still runs (cycles made meanwhile are still freed), about
140 times less often. Memory stays bounded: what the collector would find is garbage in cycles,
which a sync does not make.

Uses may nest and overlap across threads (two jobs syncing at once): the first one in raises the
threshold, the last one out restores what the first one found.

By how much (``BENCHMARKS.md``, Salesforce sync, item 3): the collector's passes took ~6 s of
a 45 s Bulk sync of 1.9M records; with the threshold raised it runs ~140x less often.

Switch: ``SYNC_SPEED_PATHS_OFF=gc_threshold`` (see :mod:`canonical.speed_paths`), or
``fewer_collections(enabled=False)``. Reference twin: the block run under the
thresholds Python had (nothing changed); ``tests/sync/test_gc_pause.py`` syncs the same
records both ways and stores the same rows.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from canonical.speed_paths import speed_path_on

#: Allocations between two collections of the youngest generation while a sync runs.
SYNC_GEN0_THRESHOLD = 100_000

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections(*, enabled: bool | None = None) -> Iterator[None]:
    """Run the block with the cyclic collector's youngest threshold raised (see module doc).

    Args:
        enabled: raise the threshold; False runs the block as it is (the reference twin);
            None: unless ``SYNC_SPEED_PATHS_OFF`` names ``gc_threshold``.
    """
    if enabled is None:
        enabled = speed_path_on("gc_threshold")
    if not enabled:
        yield
        return
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            gen0, gen1, gen2 = _saved
            # A threshold of 0 means the collector is off: leave that as it is.
            if gen0:
                gc.set_threshold(max(gen0, SYNC_GEN0_THRESHOLD), gen1, gen2)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
