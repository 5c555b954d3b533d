"""Object metadata from ``describe()``: field checks before the first query, and CSV typing.

Describes are cached for the life of the connector (one run), so a field an admin added is seen
by the next run without a restart, and each object is described at most once per run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canonical.errors import FatalApiError, MappingError
from connectors.base import StreamSpec

#: describe() types whose JSON (REST) values are numbers.
INTEGER_TYPES = frozenset({"int", "long"})
FLOAT_TYPES = frozenset({"double", "currency", "percent"})
BOOLEAN_TYPES = frozenset({"boolean"})


@dataclass(frozen=True)
class FieldInfo:
    """What the mappings validator and the connector need to know about one field.

    Attributes:
        type: Salesforce's field type (``string``, ``boolean``, ``double``, ``date``, ...).
        readable: always True for a described field (hidden fields are not described).
        updateable: the integration user may write it.
        calculated: a formula or roll-up summary field (changes without touching SystemModstamp).
        formula: the formula text, for formula fields.
        picklist_values: active picklist values (empty for non-picklists).
        restricted_picklist: values outside ``picklist_values`` are rejected on write.
        reference_to: objects a lookup points to.
        relationship_name: the name used in relationship paths (``Account`` for ``AccountId``).
    """

    name: str
    type: str
    label: str = ""
    updateable: bool = False
    nillable: bool = True
    calculated: bool = False
    formula: str | None = None
    length: int | None = None
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None

    @property
    def is_formula(self) -> bool:
        """A formula field (calculated with a formula)."""
        return self.calculated and bool(self.formula)

    @property
    def is_rollup(self) -> bool:
        """A roll-up summary field (calculated, no formula text)."""
        return self.calculated and not self.formula

    @classmethod
    def from_describe(cls, raw: Mapping[str, Any]) -> FieldInfo:
        """Build from one entry of describe()'s ``fields`` list."""
        return cls(
            name=str(raw["name"]),
            type=str(raw.get("type", "string")),
            label=str(raw.get("label") or ""),
            updateable=bool(raw.get("updateable", False)),
            nillable=bool(raw.get("nillable", True)),
            calculated=bool(raw.get("calculated", False)),
            formula=raw.get("calculatedFormula") or None,
            length=raw.get("length") or None,
            picklist_values=tuple(
                str(p["value"]) for p in raw.get("picklistValues") or () if p.get("active", True)
            ),
            restricted_picklist=bool(raw.get("restrictedPicklist", False)),
            reference_to=tuple(raw.get("referenceTo") or ()),
            relationship_name=raw.get("relationshipName") or None,
        )


@dataclass(frozen=True)
class ObjectInfo:
    """One described sObject."""

    name: str
    fields: dict[str, FieldInfo] = field(default_factory=dict)
    queryable: bool = True
    updateable: bool = True

    def field(self, name: str) -> FieldInfo | None:
        """The field by API name (case-insensitive, as Salesforce is)."""
        hit = self.fields.get(name)
        if hit is not None:
            return hit
        lowered = name.lower()
        for key, info in self.fields.items():
            if key.lower() == lowered:
                return info
        return None

    def has(self, name: str) -> bool:
        """Whether the object has the field."""
        return self.field(name) is not None

    def relationship(self, name: str) -> FieldInfo | None:
        """The lookup field whose relationship name is ``name`` (``Account`` -> AccountId)."""
        lowered = name.lower()
        for info in self.fields.values():
            if info.relationship_name and info.relationship_name.lower() == lowered:
                return info
        return None

    @classmethod
    def from_describe(cls, raw: Mapping[str, Any]) -> ObjectInfo:
        """Build from an sObject describe() answer."""
        infos = [FieldInfo.from_describe(f) for f in raw.get("fields") or ()]
        return cls(
            name=str(raw.get("name", "")),
            fields={f.name: f for f in infos},
            queryable=bool(raw.get("queryable", True)),
            updateable=bool(raw.get("updateable", True)),
        )


def missing_fields(info: ObjectInfo, names: Iterable[str]) -> list[str]:
    """The names (fields or relationship paths) the object does not expose to the user."""
    missing: list[str] = []
    for name in names:
        head, _, rest = name.partition(".")
        if not rest:
            if not info.has(name):
                missing.append(name)
        elif info.relationship(head) is None:
            # Deeper segments live on the parent object; the first hop is what we can check.
            missing.append(name)
    return missing


class DescribeCache:
    """Describes each object at most once per run; ``fetch`` performs the API call."""

    def __init__(self, fetch: Callable[[str], Mapping[str, Any]]) -> None:
        self._fetch = fetch
        self._cache: dict[str, ObjectInfo] = {}

    def get(self, object_name: str) -> ObjectInfo:
        """The object's metadata; MappingError when it does not exist or is hidden."""
        key = object_name.lower()
        if key not in self._cache:
            try:
                raw = self._fetch(object_name)
            except FatalApiError as exc:
                if exc.status == 404 or exc.code in ("NOT_FOUND", "INVALID_TYPE"):
                    msg = (
                        f"Salesforce object '{object_name}' does not exist or the integration "
                        "user cannot see it: fix the mapping's object name or grant object access"
                    )
                    raise MappingError(msg, object_name=object_name) from exc
                raise
            self._cache[key] = ObjectInfo.from_describe(raw)
        return self._cache[key]

    def clear(self) -> None:
        """Forget every describe (the next access re-describes)."""
        self._cache.clear()

    def check_fields(self, spec: StreamSpec) -> ObjectInfo:
        """Check every field a stream reads; one MappingError names the object and each field.

        The caller (which knows the mapping file) adds file:line to the problems.
        """
        info = self.get(spec.object_name)
        names = [*spec.fields, spec.primary_key, *(f.field for f in spec.filters)]
        if spec.replication_key:
            names.append(spec.replication_key)
        missing = missing_fields(info, dict.fromkeys(names))
        if missing:
            problems = [
                f"{spec.object_name}.{name}: field does not exist or is not readable by the "
                "integration user (check the API name, and field-level security)"
                for name in missing
            ]
            msg = f"{len(missing)} mapped field(s) missing on Salesforce {spec.object_name}: " + (
                ", ".join(missing)
            )
            raise MappingError(msg, problems=problems, object_name=spec.object_name, fields=missing)
        return info
