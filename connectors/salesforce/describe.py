"""Object metadata from ``describe()``: field checks before the first query, and CSV typing.

Describes are cached for the life of the connector (one run), so each object is described at
most once per run. With a :class:`DescribeStore` they are also kept on disk across runs, under
a key made of the org, the API version and the mappings' digest, for at most a day: a quiet
cycle then makes no describe call at all. A field an admin added is seen once the mapping that
names it changes (a new key), or the next day; a mapped field the kept describe lacks makes
the connector describe the object again before it reports the field missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canonical.errors import FatalApiError, MappingError
from connectors.base import StreamSpec

#: describe() types whose JSON (REST) values are numbers.
INTEGER_TYPES = frozenset({"int", "long"})
FLOAT_TYPES = frozenset({"double", "currency", "percent"})
BOOLEAN_TYPES = frozenset({"boolean"})

log = logging.getLogger(__name__)

#: How long a describe kept on disk is trusted: a day.
STORE_MAX_AGE_SECONDS = 86_400.0
#: The keys of a describe answer (and of each field) that :class:`ObjectInfo` reads: only these
#: are kept on disk (a full describe of Account runs to hundreds of kilobytes).
_OBJECT_KEYS = ("name", "queryable", "updateable")
_FIELD_KEYS = (
    "name",
    "type",
    "label",
    "updateable",
    "nillable",
    "calculated",
    "calculatedFormula",
    "length",
    "picklistValues",
    "restrictedPicklist",
    "referenceTo",
    "relationshipName",
)


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


def store_key(*parts: str) -> str:
    """The key of a :class:`DescribeStore`: a digest of what makes a kept describe stale."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


class DescribeStore:
    """Describe answers kept on disk across runs: ``<root>/<key>/<object>.json``.

    Args:
        root: the folder (the service's var dir).
        key: :func:`store_key` of the org, the API version and the mappings' digest; a new key
            starts empty (and the folders of other keys are removed once a day old).
        max_age_seconds: an answer older than this is described again.
        clock: seconds since the epoch (tests move it).
    """

    def __init__(
        self,
        root: Path,
        key: str,
        *,
        max_age_seconds: float = STORE_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = root / key
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._pruned = False

    def _path(self, object_name: str) -> Path:
        return self.folder / f"{object_name.lower()}.json"

    def load(self, object_name: str) -> Mapping[str, Any] | None:
        """The kept answer, or None when there is none, it is too old or unreadable."""
        try:
            kept = json.loads(self._path(object_name).read_text(encoding="utf-8"))
            at = float(kept["at"])
            raw = kept["describe"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(raw, dict) or not 0 <= self.clock() - at < self.max_age_seconds:
            return None
        return raw

    def save(self, object_name: str, raw: Mapping[str, Any]) -> None:
        """Keep the parts of an answer :class:`ObjectInfo` reads (a failed write only logs)."""
        slim = {k: raw[k] for k in _OBJECT_KEYS if k in raw}
        slim["fields"] = [{k: f[k] for k in _FIELD_KEYS if k in f} for f in raw.get("fields") or ()]
        path = self._path(object_name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._prune()
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"at": self.clock(), "describe": slim}), encoding="utf-8")
            tmp.replace(path)  # readers in other processes see the old file or the new one
        except OSError as exc:
            log.warning("could not keep the describe of %s on disk: %s", object_name, exc)

    def drop(self, object_name: str) -> None:
        """Forget the kept answer of one object."""
        self._path(object_name).unlink(missing_ok=True)

    def _prune(self) -> None:
        # Folders of earlier keys (another API version, an older mapping) once they are stale.
        if self._pruned:
            return
        self._pruned = True
        for other in self.folder.parent.iterdir():
            if other == self.folder or not other.is_dir():
                continue
            files = list(other.glob("*.json"))
            if all(self.clock() - f.stat().st_mtime >= self.max_age_seconds for f in files):
                for f in files:
                    f.unlink(missing_ok=True)
                for f in other.iterdir():
                    f.unlink(missing_ok=True)
                other.rmdir()


class DescribeCache:
    """Describes each object at most once per run; ``fetch`` performs the API call.

    With a ``store``, an answer kept from an earlier run (see :class:`DescribeStore`) is used
    instead of a call, and each fresh answer is kept.
    """

    def __init__(
        self, fetch: Callable[[str], Mapping[str, Any]], store: DescribeStore | None = None
    ) -> None:
        self._fetch = fetch
        self._cache: dict[str, ObjectInfo] = {}
        self.store = store
        #: Objects whose metadata came from the store in this run (not described afresh).
        self._kept: set[str] = set()

    def get(self, object_name: str) -> ObjectInfo:
        """The object's metadata; MappingError when it does not exist or is hidden."""
        key = object_name.lower()
        if key not in self._cache:
            kept = self.store.load(object_name) if self.store is not None else None
            if kept is not None:
                self._kept.add(key)
                self._cache[key] = ObjectInfo.from_describe(kept)
                return self._cache[key]
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
            if self.store is not None:
                self.store.save(object_name, raw)
        return self._cache[key]

    def forget(self, object_name: str) -> None:
        """Forget one object here and on disk (the next access describes it)."""
        key = object_name.lower()
        self._cache.pop(key, None)
        self._kept.discard(key)
        if self.store is not None:
            self.store.drop(object_name)

    def clear(self) -> None:
        """Forget every describe of this run (the next access re-describes or reads the store)."""
        self._cache.clear()
        self._kept.clear()

    def check_fields(self, spec: StreamSpec) -> ObjectInfo:
        """Check every field a stream reads; one MappingError names the object and each field.

        A field missing from a describe kept from an earlier run is checked once more against
        a fresh one (an admin may have added it since). The caller (which knows the mapping
        file) adds file:line to the problems.
        """
        info = self.get(spec.object_name)
        names = [*spec.fields, spec.primary_key, *(f.field for f in spec.filters)]
        if spec.replication_key:
            names.append(spec.replication_key)
        missing = missing_fields(info, dict.fromkeys(names))
        if missing and spec.object_name.lower() in self._kept:
            self.forget(spec.object_name)
            info = self.get(spec.object_name)
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
