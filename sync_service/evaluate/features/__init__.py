"""Features for the rules, read from the store chunk by chunk and aggregated in polars.

What is computed is shaped by the policy: only the features it declares (and the ask counts
its caps need) are read. SQL selects the narrow live rows of one chunk (and does the plain
``GROUP BY`` sums of tickets and Gainsight rows); polars ranks and aggregates them (latest NPS
answers, each cap's nth ask, the next renewal): one sort per chunk instead of the database's
window functions, several times faster on both backends. Python never loops over rows.

The package, by job:

* :mod:`.plan` -- which features a policy needs, and the polars steps that compute them;
* :mod:`.sql` and :mod:`.run_tables` -- the pieces queries are built from, and the per-run
  temporary tables (asks and answers filed under another account, Gainsight opt flags);
* :mod:`.query` -- :class:`~.query.FeatureQuery`: one chunk's rows read and aggregated
  (a query's result becomes a frame through :mod:`sync_service.store.frames`);
* :mod:`.chunks` -- keyset chunking by account range, then the contacts without an account;
* :mod:`.parallel` -- :func:`~.parallel.stream_feature_chunks`: readers in threads, each on its
  own connection, ahead of the caller; :mod:`.reader_pragmas` is their SQLite speed path.

Import names from the module that defines them; this package offers the entry points below.
"""

from __future__ import annotations

from sync_service.evaluate.features.chunks import (
    FeatureChunk,
    compute_features,
    iter_feature_chunks,
)
from sync_service.evaluate.features.parallel import stream_feature_chunks

__all__ = ["FeatureChunk", "compute_features", "iter_feature_chunks", "stream_feature_chunks"]
