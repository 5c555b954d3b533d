"""Where the guard writes in the CRM, read from the asks mapping (``advocacy_asks``).

The fields that feed the canonical ask (``Contact__c``, ``Type__c``, ...) are the ones a logged
ask is created with, and the entity's ``extra`` fields ``guard_ask_id``, ``guard_status`` and
``guard_reason`` (``guard_override`` is only read) are the ones the guard writes. So the admin
maps every ask field once, in ``mappings/salesforce.yaml``, for reading and writing alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from canonical.model import Entity
from sync_service.mapping.model import SourceMapping

#: Canonical ask fields a logged ask is created with, when mapped.
CREATE_FIELDS = (
    "contact_id",
    "account_id",
    "ask_type",
    "status",
    "requested_date",
    "team",
    "opportunity_id",
)
#: Extra fields the guard needs: the external key, and the stamp it writes.
GUARD_EXTRAS = ("guard_ask_id", "guard_status", "guard_reason")


@dataclass(frozen=True)
class AskFields:
    """The CRM object and fields of asks, for creating logged asks and stamping requests.

    Attributes:
        object_name: the CRM object (``Reference_Request__c``).
        create: canonical field -> CRM field written when a logged ask is created.
        ask_id: the external-id field holding the guard's ask id.
        status: the stamp's status field (``Guard_Status__c``).
        reason: the stamp's reason field (``Guard_Reason__c``).
        override: the requester's override box, when mapped (read only).
    """

    object_name: str
    create: dict[str, str]
    ask_id: str
    status: str
    reason: str
    override: str | None

    @classmethod
    def from_mapping(cls, source: SourceMapping | None) -> AskFields | None:
        """The ask fields of a Salesforce mapping; None when asks or the guard are not mapped."""
        if source is None or source.system != "salesforce":
            return None
        em = source.entities.get(Entity.ASK)
        if em is None:
            return None
        extras = {f.name: f.crm_field for f in em.extra_fields}
        if any(name not in extras for name in GUARD_EXTRAS):
            return None
        create = {f.name: f.crm_field for f in em.fields if f.name in CREATE_FIELDS}
        return cls(
            object_name=em.object_name,
            create=create,
            ask_id=extras["guard_ask_id"],
            status=extras["guard_status"],
            reason=extras["guard_reason"],
            override=extras.get("guard_override"),
        )

    def create_fields(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """CRM field -> value for creating the logged ask ``row`` (a store row of the ask)."""
        out: dict[str, Any] = {}
        for name, crm in self.create.items():
            value = row.get(name)
            if value is not None:
                out[crm] = value.isoformat() if isinstance(value, date) else value
        extra = row.get("extra") or {}
        out[self.status] = extra.get("guard_status")
        out[self.reason] = extra.get("guard_reason")
        return out

    def written(self) -> set[str]:
        """``Object.Field`` of every field the guard writes (for least-privilege checks)."""
        names = {*self.create.values(), self.ask_id, self.status, self.reason}
        return {f"{self.object_name}.{n}" for n in names}
