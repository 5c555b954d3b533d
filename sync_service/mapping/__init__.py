"""Field mappings: which CRM field feeds which canonical field, and where results are written.

Admins edit ``mappings/salesforce.yaml`` and ``mappings/gainsight.yaml`` (see ``MAPPINGS.md``);
:func:`load_mappings` validates them offline, :mod:`sync_service.mapping.online` against the
CRM's describe, and :class:`~sync_service.mapping.runtime.MappingStore` re-reads them before
each run, keeping the last valid version when an edit is invalid.
"""

from __future__ import annotations

from sync_service.mapping.loader import load_mappings, load_source
from sync_service.mapping.model import (
    EntityMapping,
    FieldMapping,
    Mappings,
    SourceMapping,
    WritebackTarget,
)

__all__ = [
    "EntityMapping",
    "FieldMapping",
    "Mappings",
    "SourceMapping",
    "WritebackTarget",
    "load_mappings",
    "load_source",
]
