"""An in-memory CRM that honours the connector contract (:mod:`connectors.base`).

``MemoryConnector.records[object]`` holds raw dicts (each with ``Id`` and ``SystemModstamp``):
its streams serve them under the read contract (closed lower cursor, ``until`` cap, ordered by
``(SystemModstamp, Id)``), and every write succeeds unless ``write_result`` says otherwise. What
sits above the connectors runs against it without a network: the tests, and the benchmarks
whose subject is not the CRM (``bench.matching`` confirms its writes here). Failures can be
injected (``fail_after_batches``, ``failure``) and reads and writes are recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from canonical.model import System
from connectors.base import (
    ApiUsage,
    Batch,
    Connector,
    Cursor,
    RecordChange,
    Stream,
    StreamSpec,
    WriteResult,
)


class MemoryStream(Stream):
    """Serves records from a list, following the read contract of connectors.base."""

    def __init__(self, spec: StreamSpec, owner: MemoryConnector) -> None:
        super().__init__(spec)
        self.owner = owner

    def read(self, since: Cursor | None, until: datetime) -> Iterator[Batch]:
        """The records after ``since`` up to ``until``, in ``batch_size`` batches."""
        self.owner.reads.append((self.spec.name, since, until))
        rows = sorted(
            (
                r
                for r in self.owner.records.get(self.spec.object_name, [])
                if r["SystemModstamp"] <= until
                and (since is None or Cursor(r["SystemModstamp"], r["Id"]) > since)
            ),
            key=lambda r: (r["SystemModstamp"], r["Id"]),
        )
        for start in range(0, len(rows), self.owner.batch_size):
            chunk = rows[start : start + self.owner.batch_size]
            if self.owner.fail_after_batches is not None:
                if self.owner.fail_after_batches <= 0:
                    raise self.owner.failure
                self.owner.fail_after_batches -= 1
            last = chunk[-1]
            cursor: Cursor | None = Cursor(last["SystemModstamp"], last["Id"])
            if self.owner.cursor_at_end_only and start + self.owner.batch_size < len(rows):
                cursor = since  # as a Bulk read: unordered rows, the cursor moves at the end
            yield Batch([dict(r) for r in chunk], cursor)

    def ids(self) -> Iterator[list[str]]:
        """Every record's id (deleted or not), in one page."""
        yield [r["Id"] for r in self.owner.records.get(self.spec.object_name, [])]


@dataclass
class MemoryConnector(Connector):
    """An in-memory CRM: ``records[object] = [raw dicts]``."""

    system = System.SALESFORCE
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batch_size: int = 3
    fail_after_batches: int | None = None
    cursor_at_end_only: bool = False
    failure: Exception = field(default_factory=lambda: RuntimeError("boom"))
    reads: list[tuple[str, Cursor | None, datetime]] = field(default_factory=list)
    writes: list[tuple[str, list[RecordChange]]] = field(default_factory=list)
    write_result: Callable[[RecordChange], WriteResult] | None = None

    def stream(self, spec: StreamSpec) -> Stream:
        """A stream over ``records[spec.object_name]``."""
        return MemoryStream(spec, self)

    def write(self, object_name: str, changes: Sequence[RecordChange]) -> list[WriteResult]:
        """Record the changes; each succeeds unless ``write_result`` decides."""
        self.writes.append((object_name, list(changes)))
        if self.write_result is None:
            return [WriteResult(c.record_id, True) for c in changes]
        return [self.write_result(c) for c in changes]

    def usage(self) -> ApiUsage:
        """One call per read or write."""
        return ApiUsage(calls=len(self.reads) + len(self.writes))
