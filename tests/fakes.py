"""Fakes for tests of what sits above the connectors (the in-memory CRM is
:class:`connectors.memory.MemoryConnector`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canonical.errors import RecordError
from canonical.model import Entity
from connectors.base import DELETED_KEY, StreamSpec


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
