"""The small interface every connector implements.

A connector declares streams (one per CRM object the mappings name), reads a stream since a
cursor as an iterator of bounded batches of plain dicts, and writes batches of field changes,
returning one result per record. Auth, paging, bulk jobs, API limits and retries live inside
the connector and nowhere else.

Watermark rules (the ingest side relies on them, and tests name them):

* A stream reads records whose ``(replication_key, primary_key)`` is *strictly after* the given
  :class:`Cursor` and whose replication key is ``<= until``, ordered by both. The caller moves the
  cursor back by an overlap window at the start of a run, so rows committed late just below the
  old watermark are read again; upserts by primary key make the repeats harmless.
* Each :class:`Batch` carries the cursor of its last record; the caller commits the batch's rows
  and that cursor in one transaction, so a crash resumes exactly after the last committed batch.
* Deleted records are yielded too, with ``record[DELETED_KEY] = True`` (and the surviving
  record's id in ``MERGED_INTO_KEY`` when a merge deleted it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from canonical.model import System

#: Key a connector sets on a raw record that was deleted in the CRM.
DELETED_KEY = "_deleted"
#: Key holding the id of the record a deleted record was merged into (Salesforce MasterRecordId).
MERGED_INTO_KEY = "_merged_into"
#: Key a connector sets on a raw record that arrived malformed (unreadable id or modified date,
#: not even an object); its value says why, without record values. Such records are passed on,
#: never dropped, so the ingest can quarantine and count them.
INVALID_KEY = "_invalid"

FilterOperator = Literal["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "LIKE"]


@dataclass(frozen=True)
class FieldFilter:
    """A structured filter from a mapping: ``field operator values`` (never raw query text)."""

    field: str
    operator: FilterOperator
    values: tuple[Any, ...]


@dataclass(frozen=True)
class StreamSpec:
    """What to read: built by the service from a mapping, handed to a connector.

    Attributes:
        name: the canonical entity this stream feeds (``contacts``).
        object_name: the CRM object (``Contact``, ``Reference_Request__c``, ``Company``).
        fields: CRM fields to read; the connector adds the keys it needs.
        primary_key: the CRM's id field.
        replication_key: the modified-time field used as the cursor; None reads in full.
        filters: structured filters ANDed together.
    """

    name: str
    object_name: str
    fields: tuple[str, ...]
    primary_key: str = "Id"
    replication_key: str | None = "SystemModstamp"
    filters: tuple[FieldFilter, ...] = ()


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in a stream: the replication key value, then the primary key as tie-break."""

    updated_at: datetime
    record_id: str = ""


@dataclass
class Batch:
    """A bounded list of raw records (CRM field names) and the cursor after its last record."""

    records: list[dict[str, Any]]
    cursor: Cursor | None = None


@dataclass(frozen=True)
class RecordChange:
    """Field values to write to one CRM record (None clears a field)."""

    record_id: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class WriteResult:
    """The CRM's verdict on one record of a write.

    Attributes:
        record_id: the record written.
        success: True only when the CRM confirmed the write.
        code: the CRM's error code on failure (``UNABLE_TO_LOCK_ROW``).
        message: the CRM's message on failure.
        retryable: whether the same write may succeed later.
        crm_id: for a create, the id the CRM gave the new record.
    """

    record_id: str
    success: bool
    code: str | None = None
    message: str | None = None
    retryable: bool = False
    crm_id: str | None = None


@dataclass
class ApiUsage:
    """API consumption as the connector last saw it."""

    calls: int = 0
    used: int | None = None
    limit: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def share_used(self) -> float | None:
        """Fraction of the daily allocation used, when the CRM reported it."""
        if self.used is None or not self.limit:
            return None
        return self.used / self.limit


class Stream(ABC):
    """One CRM object read incrementally."""

    #: How many records the current read will return, when the CRM counted them first (a
    #: progress bar's total); None when the stream does not know.
    last_count: int | None = None

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec

    @abstractmethod
    def read(self, since: Cursor | None, until: datetime) -> Iterator[Batch]:
        """Yield batches of records after ``since`` (None: from the beginning) up to ``until``."""

    def ids(self) -> Iterator[list[str]]:
        """Yield batches of the ids of every live record, for hard-delete reconciliation."""
        msg = f"{type(self).__name__} cannot list ids"
        raise NotImplementedError(msg)


class Connector(ABC):
    """A CRM: streams to read, a writer, and its API usage."""

    system: ClassVar[System]

    @abstractmethod
    def stream(self, spec: StreamSpec) -> Stream:
        """Return the stream that reads ``spec``."""

    @abstractmethod
    def write(self, object_name: str, changes: Sequence[RecordChange]) -> list[WriteResult]:
        """Write field changes; one result per change, failures as data, not exceptions."""

    def create(
        self, object_name: str, records: Sequence[RecordChange], external_id_field: str
    ) -> list[WriteResult]:
        """Create records exactly once; one result per record, failures as data.

        Each record's ``record_id`` is its key in ``external_id_field`` (an external-id field
        of the object): a record the CRM already holds under that key (created by an earlier
        call whose answer was lost) is reported as created, with its id, and not made twice.
        """
        msg = f"{type(self).__name__} cannot create records"
        raise NotImplementedError(msg)

    def plan_reads(  # noqa: B027 - optional hook
        self, reads: Sequence[tuple[StreamSpec, Cursor | None, datetime]]
    ) -> None:
        """Be told, before the first read of a sync, every stream's ``(spec, since, until)``.

        A connector may use it to ask its up-front questions (how many rows changed) for all
        streams in one call; a read whose window differs from the plan asks for itself. The
        default does nothing.
        """

    @abstractmethod
    def usage(self) -> ApiUsage:
        """API usage seen so far."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions and connections."""
