"""The loaded mappings: what the service reads from each CRM and where it writes results.

Built by :func:`sync_service.mapping.loader.load_mappings` from ``mappings/*.yaml`` and immutable
afterwards. Ingest asks an :class:`EntityMapping` for its :class:`~connectors.base.StreamSpec`
and turns each raw record into a store row with :meth:`EntityMapping.to_row`; the writeback
reads :class:`WritebackTarget`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from canonical.errors import RecordError
from canonical.model import CANONICAL_FIELDS, Entity, FieldType, System
from canonical.yaml import YamlDocument
from connectors.base import DELETED_KEY, INVALID_KEY, MERGED_INTO_KEY, FieldFilter, StreamSpec
from sync_service.mapping.compiled import compile_to_row
from sync_service.mapping.convert import Converter, UnmappedValueError, to_datetime

WritebackEntity = Literal["contact", "account", "opportunity"]

#: Which canonical entity a writeback target's records are read as.
WRITEBACK_ENTITIES: dict[str, Entity] = {
    "contact": Entity.CONTACT,
    "account": Entity.ACCOUNT,
    "opportunity": Entity.OPPORTUNITY,
}

#: What the opportunity target can receive: the reference matching's suggestions (a long text
#: area; see sync_service.match), not an evaluation's results.
OPPORTUNITY_RESULTS: tuple[str, ...] = ("suggested_references",)

#: Longest id the store keeps (``sa.String(64)``).
MAX_ID = 64

_EMAILISH = re.compile(r"mail", re.IGNORECASE)


@dataclass(frozen=True)
class WritebackTarget:
    """Where the results for one kind of record are written.

    Attributes:
        target: the CRM written to.
        entity: ``contact`` or ``account``: whose evaluation is written; ``opportunity``: the
            reference matching's suggestions (written by the match stage, not the writeback).
        object_name: the CRM object (``Contact``).
        fields: result name (``canonical.model.RESULT_FIELDS``) -> CRM field. Only these fields
            are ever written; a result left out is not written (and never cleared).
        owned: True when the service owns these fields outright; False when people may edit
            them too (the drift guard then leaves a human's change alone).
        override_field: a checkbox on the same object; when it is set a person has taken over
            and nothing is written to that record. None: no override.
    """

    target: System
    entity: WritebackEntity
    object_name: str
    fields: dict[str, str]
    owned: bool
    override_field: str | None

    @property
    def crm_fields(self) -> tuple[str, ...]:
        """The CRM fields this target reads back for the diff: mapped fields, then override."""
        names = list(self.fields.values())
        if self.override_field and self.override_field not in names:
            names.append(self.override_field)
        return tuple(names)


@dataclass(frozen=True)
class FieldMapping:
    """One CRM field feeding one canonical (or extra) field.

    Attributes:
        crm_field: the CRM's field name.
        name: the canonical field, or the feature name for an extra field.
        type: the canonical type the value is converted to.
        required: a record without a value is quarantined.
        default: the value used when the CRM has none (already converted).
        is_extra: stored in ``row["extra"]`` rather than a column.
        convert: the precompiled converter (value map, transform, type).
        line: where it is declared (``file:line:col``), for messages.
        has_map: a value map applies.
        transform: ``strip``/``lower``/``upper``, in order, applied to text first.
    """

    crm_field: str
    name: str
    type: FieldType
    convert: Converter = field(repr=False, compare=False)
    required: bool = False
    default: Any = None
    is_extra: bool = False
    line: str = field(default="", compare=False)
    has_map: bool = False
    transform: tuple[str, ...] = ()

    @property
    def plain(self) -> bool:
        """No value map and no transform: the compiled ``to_row`` inlines the common case."""
        return not self.has_map and not self.transform

    @property
    def transform_only(self) -> bool:
        """Text transforms but no value map: the compiled ``to_row`` applies them inline."""
        return bool(self.transform) and not self.has_map


class EntityMapping:
    """How one CRM object becomes rows of one canonical table.

    Attributes:
        system: the source system.
        entity: the canonical entity (its value is the store table).
        object_name: the CRM object read.
        primary_key: the CRM id field.
        replication_key: the modified-time field (None: always read in full).
        filters: structured filters ANDed into the read.
        fields: canonical fields mapped, in file order.
        extra_fields: extra fields mapped (go to ``row["extra"]``).
        crm_fields: CRM fields read back for the writeback diff (``row["extra"]["_crm"]``).
    """

    def __init__(
        self,
        *,
        system: System,
        entity: Entity,
        object_name: str,
        primary_key: str,
        replication_key: str | None,
        filters: tuple[FieldFilter, ...] = (),
        fields: tuple[FieldMapping, ...] = (),
        extra_fields: tuple[FieldMapping, ...] = (),
        crm_fields: tuple[str, ...] = (),
    ) -> None:
        self.system = system
        self.entity = entity
        self.object_name = object_name
        self.primary_key = primary_key
        self.replication_key = replication_key
        self.filters = filters
        self.fields = fields
        self.extra_fields = extra_fields
        self.crm_fields = crm_fields
        mapped = {f.name for f in fields}
        # Unmapped canonical columns are written as NULL so every row has the same columns
        # (one INSERT statement per batch) and a field removed from the mapping is cleared.
        self._blank: dict[str, Any] = {
            name: None for name in CANONICAL_FIELDS[entity] if name not in mapped
        }
        # (crm field, name, converter, default, required, label, type) per field, for the loop
        self._plans = tuple(self._plan(f) for f in fields)
        self._extra_plans = tuple(self._plan(f) for f in extra_fields)
        self._spec = self._build_spec()
        self._fast = compile_to_row(self)
        self._sensitive = frozenset(
            f.crm_field for f in (*fields, *extra_fields) if _is_sensitive(f)
        )

    def _plan(self, f: FieldMapping) -> tuple[str, str, Converter, Any, bool, str, str]:
        label = f"{self.object_name}.{f.crm_field}"
        return (f.crm_field, f.name, f.convert, f.default, f.required, label, f.type)

    def __repr__(self) -> str:
        return f"EntityMapping({self.system}:{self.entity.value} <- {self.object_name})"

    def stream_spec(self) -> StreamSpec:
        """The stream to read: every mapped CRM field plus the writeback fields read back."""
        return self._spec

    def _build_spec(self) -> StreamSpec:
        names: list[str] = [self.primary_key]
        if self.replication_key:
            names.append(self.replication_key)
        for f in (*self.fields, *self.extra_fields):
            names.append(f.crm_field)
        names.extend(self.crm_fields)
        return StreamSpec(
            name=self.entity.value,
            object_name=self.object_name,
            fields=tuple(dict.fromkeys(names)),
            primary_key=self.primary_key,
            replication_key=self.replication_key,
            filters=self.filters,
        )

    def to_row(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Turn one raw CRM record into a row of the entity's store table.

        The row has ``id``, every canonical column of the entity (unmapped ones None),
        ``source_updated_at``, ``deleted``, ``merged_into`` and ``extra`` (extra fields, plus
        ``_crm``: the current CRM values of the writeback fields on this object). A deleted
        record keeps only the columns its raw record carries, so its last known values stay.

        Runs a function compiled for this mapping (see :mod:`sync_service.mapping.compiled`);
        any record off its happy path is handed to :meth:`to_row_checked`, which gives the
        same row or the precise error.

        Raises:
            RecordError: the record has no id, a required field is empty, or a value cannot
                be converted; the reason names the field (never an email value).
        """
        return self._fast(raw)

    def to_row_checked(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The reference implementation of :meth:`to_row`, field by field (same contract)."""
        get = raw.get
        rid = get(self.primary_key)
        if rid is None or rid == "":
            msg = f"{self.object_name}.{self.primary_key}: the record has no id; it is skipped"
            raise RecordError(msg)
        if type(rid) is not str:
            rid = str(rid)
        if len(rid) > MAX_ID:
            msg = f"{self.object_name}.{self.primary_key}: id longer than {MAX_ID} characters"
            raise RecordError(msg, record_id=rid[:MAX_ID])
        if get(DELETED_KEY):
            return self._deleted_row(raw, rid)
        invalid = get(INVALID_KEY)
        if invalid:
            msg = f"{self.object_name}: malformed record from the connector ({invalid})"
            raise RecordError(msg, record_id=rid)
        row: dict[str, Any] = {"id": rid, **self._blank}
        for crm, name, conv, default, required, label, ftype in self._plans:
            value = get(crm)
            if value is None or value == "":
                if required and default is None:
                    self._fail_missing(label, name, rid)
                row[name] = default
                continue
            try:
                row[name] = conv(value)
            except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
                self._fail_value(crm, label, name, ftype, value, exc, rid)
        extra: dict[str, Any] = {}
        for crm, name, conv, default, required, label, ftype in self._extra_plans:
            value = get(crm)
            if value is None or value == "":
                if required and default is None:
                    self._fail_missing(label, name, rid)
                extra[name] = default
                continue
            try:
                extra[name] = conv(value)
            except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
                self._fail_value(crm, label, name, ftype, value, exc, rid)
        if self.crm_fields:
            extra["_crm"] = {name: get(name) for name in self.crm_fields}
        row["extra"] = extra
        row["source_updated_at"] = self._updated_at(raw, rid)
        row["deleted"] = False
        row["merged_into"] = None
        return row

    def _updated_at(self, raw: Mapping[str, Any], rid: str) -> Any:
        if self.replication_key is None:
            return None
        value = raw.get(self.replication_key)
        if value is None or value == "":
            return None
        try:
            return to_datetime(value)
        except (ValueError, TypeError, OverflowError) as exc:
            self._fail_value(
                self.replication_key,
                f"{self.object_name}.{self.replication_key}",
                "source_updated_at",
                "datetime",
                value,
                exc,
                rid,
            )

    def _deleted_row(self, raw: Mapping[str, Any], rid: str) -> dict[str, Any]:
        # A deleted record (getDeleted, queryAll) may carry only its id: keep the stored values
        # of every column it does not carry, and never quarantine it for a bad value.
        merged = raw.get(MERGED_INTO_KEY)
        row: dict[str, Any] = {
            "id": rid,
            "deleted": True,
            "merged_into": str(merged) if merged else None,
        }
        for crm, name, conv, *_ in self._plans:
            value = raw.get(crm)
            if crm in raw and value is not None and value != "":
                try:
                    row[name] = conv(value)
                except (ValueError, TypeError, OverflowError, ArithmeticError):
                    continue
        if self.replication_key and raw.get(self.replication_key):
            with contextlib.suppress(ValueError, TypeError, OverflowError):
                row["source_updated_at"] = to_datetime(raw[self.replication_key])
        return row

    @staticmethod
    def _fail_missing(label: str, name: str, rid: str) -> NoReturn:
        msg = f"{label}: required (feeds {name}) but empty; fill it in the CRM or give a default"
        raise RecordError(msg, record_id=rid)

    def _fail_value(
        self,
        crm: str,
        label: str,
        name: str,
        expected: str,
        value: Any,
        exc: BaseException,
        rid: str,
    ) -> NoReturn:
        sensitive = crm in self._sensitive
        shown = _show(value, sensitive)
        if isinstance(exc, UnmappedValueError):
            msg = f"{label}: {shown} is not in the value map of {name}; add it to the map"
            raise RecordError(msg, record_id=rid)
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # Parser messages quote the value: drop them where the value must not be shown.
        detail = "" if sensitive or "@" in what or shown == "the value" else f" ({what[:80]})"
        msg = f"{label}: {shown} is not a valid {expected} for {name}{detail}"
        raise RecordError(msg, record_id=rid)


def _is_sensitive(f: FieldMapping) -> bool:
    return f.name == "email" or bool(_EMAILISH.search(f.crm_field))


def _show(value: Any, sensitive: bool) -> str:
    """A value for a message: never an email (nor anything that looks like one), kept short."""
    text = repr(value)
    if sensitive or "@" in text:
        return "the value"
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class SourceMapping:
    """Everything one source file maps.

    Attributes:
        system: ``salesforce`` or ``gainsight``.
        path: the mapping file.
        entities: canonical entity -> how it is read from this system.
        writeback: where results are written in this system (empty: nothing is written).
    """

    system: System
    path: Path
    entities: dict[Entity, EntityMapping]
    writeback: list[WritebackTarget]
    doc: YamlDocument | None = field(default=None, compare=False, repr=False)

    def where(self, *keys: str | int) -> str:
        """``file:line:col`` of a key path in the file (for messages of later checks)."""
        if self.doc is None:
            return str(self.path)
        pos = self.doc.locate(list(keys))
        return f"{self.path}:{pos[0]}:{pos[1]}" if pos else str(self.path)

    def writeback_for(self, entity: WritebackEntity) -> WritebackTarget | None:
        """The writeback target for ``contact`` or ``account``, if mapped."""
        return next((w for w in self.writeback if w.entity == entity), None)


@dataclass(frozen=True)
class Mappings:
    """Every mapping file of a ``mappings/`` directory, validated.

    Attributes:
        path: the directory.
        salesforce: ``mappings/salesforce.yaml``, when present.
        gainsight: ``mappings/gainsight.yaml``, when present.
        digest: SHA-256 of the files' names and bytes, for run records and change detection.
    """

    path: Path
    salesforce: SourceMapping | None
    gainsight: SourceMapping | None
    digest: str

    @property
    def sources(self) -> list[SourceMapping]:
        """The sources present, Salesforce first."""
        return [s for s in (self.salesforce, self.gainsight) if s is not None]

    def extra_features(self) -> dict[str, tuple[Entity, FieldType]]:
        """Extra field name -> (entity, type), for the rules engine to type its features."""
        out: dict[str, tuple[Entity, FieldType]] = {}
        for source in self.sources:
            for em in source.entities.values():
                for f in em.extra_fields:
                    out[f.name] = (em.entity, f.type)
        return out

    def writeback_targets(self) -> list[WritebackTarget]:
        """Every writeback target of every source."""
        return [w for s in self.sources for w in s.writeback]
