"""Fakes that honour the connector contract, for tests of what sits above the connectors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from canonical.errors import RecordError
from canonical.model import Entity
from connectors.base import (
    DELETED_KEY,
    ApiUsage,
    Batch,
    Connector,
    Cursor,
    RecordChange,
    Stream,
    StreamSpec,
    WriteResult,
)


class FakeStream(Stream):
    """Serves records from a list, following the read contract of connectors.base."""

    def __init__(self, spec: StreamSpec, owner: FakeConnector) -> None:
        super().__init__(spec)
        self.owner = owner

    def read(self, since: Cursor | None, until: datetime) -> Iterator[Batch]:
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
        yield [r["Id"] for r in self.owner.records.get(self.spec.object_name, [])]


@dataclass
class FakeConnector(Connector):
    """An in-memory CRM: ``records[object] = [raw dicts]``."""

    system = "salesforce"
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batch_size: int = 3
    fail_after_batches: int | None = None
    cursor_at_end_only: bool = False
    failure: Exception = field(default_factory=lambda: RuntimeError("boom"))
    reads: list[tuple[str, Cursor | None, datetime]] = field(default_factory=list)
    writes: list[tuple[str, list[RecordChange]]] = field(default_factory=list)
    write_result: Callable[[RecordChange], WriteResult] | None = None

    def stream(self, spec: StreamSpec) -> Stream:
        return FakeStream(spec, self)

    def write(self, object_name: str, changes: Sequence[RecordChange]) -> list[WriteResult]:
        self.writes.append((object_name, list(changes)))
        if self.write_result is None:
            return [WriteResult(c.record_id, True) for c in changes]
        return [self.write_result(c) for c in changes]

    def usage(self) -> ApiUsage:
        return ApiUsage(calls=len(self.reads) + len(self.writes))


@dataclass
class FakeContactMapping:
    """Maps raw ``Contact`` dicts (Id, AccountId, FirstName, SystemModstamp) to contacts rows."""

    entity: Entity = Entity.CONTACT
    object_name: str = "Contact"

    def stream_spec(self) -> StreamSpec:
        return StreamSpec(
            name="contacts", object_name=self.object_name, fields=("Id", "AccountId", "FirstName")
        )

    def to_row(self, raw: dict[str, Any]) -> dict[str, Any]:
        if not raw.get("Id"):
            raise RecordError("missing Id")
        if raw.get("FirstName") == "BAD":
            raise RecordError("FirstName: not a name", record_id=raw["Id"])
        return {
            "id": raw["Id"],
            "account_id": raw.get("AccountId"),
            "first_name": raw.get("FirstName"),
            "source_updated_at": raw["SystemModstamp"],
            "deleted": bool(raw.get(DELETED_KEY, False)),
            "extra": {},
        }
