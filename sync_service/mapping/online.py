"""Check a mapping against the CRM's own schema (``sync-service validate --online``).

Given ``describe(object) -> {field name: FieldInfo}`` (the connector's describe call, adapted),
every object and field the mapping names is checked:

* the object can be described, and each field exists and is readable (with a "did you mean");
* the field's CRM type can feed the canonical type (a value map relaxes this);
* the keys of a value map on a picklist are values of that picklist;
* writeback fields exist, are updateable by the integration user, fit the result (a restricted
  status picklist must hold every status), and the override field is a checkbox;
* formula and roll-up fields are flagged as warnings: their changes do not move the
  replication key, so only the nightly reconciliation refreshes them.

Problems and warnings are ``file:line:col: message`` lines, like the offline ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from canonical.errors import FatalApiError
from canonical.model import RESULT_FIELDS, FieldType, Status
from canonical.yaml import did_you_mean
from sync_service.mapping.model import EntityMapping, FieldMapping, SourceMapping, WritebackTarget


class FieldInfo(Protocol):
    """What online validation reads of one described field.

    ``connectors.salesforce.describe.FieldInfo`` fits. An optional ``readable`` attribute
    (default True: describe lists only the fields the user can see) marks hidden fields.
    """

    @property
    def name(self) -> str:
        """The API name."""

    @property
    def type(self) -> str:
        """The CRM's type name (``string``, ``picklist``, ``double``, ``STRING``, ...)."""

    @property
    def updateable(self) -> bool:
        """The integration user may write it."""

    @property
    def calculated(self) -> bool:
        """A formula or roll-up field."""

    @property
    def picklist_values(self) -> Sequence[str]:
        """Active picklist values (empty for other types)."""


#: ``describe(object_name)`` -> fields by API name. Raises FatalApiError (or KeyError) for an
#: object that does not exist or cannot be read; other errors (auth, budget) propagate.
Describe = Callable[[str], Mapping[str, FieldInfo]]

_TEXT = {
    "string",
    "textarea",
    "picklist",
    "multipicklist",
    "combobox",
    "email",
    "phone",
    "url",
    "id",
    "reference",
    "encryptedstring",
    "gsid",
    "lookup",
    "richtextarea",
    "sfdcid",
}
_INTEGER = {"int", "integer", "long"}
_NUMBER = {"double", "currency", "percent", "number", "decimal", "int", "integer", "long"}
_BOOLEAN = {"boolean", "checkbox", "bool"}
_DATE = {"date"}
_DATETIME = {"datetime", "date_time"}

#: canonical type -> CRM types (lower case) that convert to it without a value map.
COMPATIBLE: dict[FieldType, set[str]] = {
    "string": (
        _TEXT | _INTEGER | _NUMBER | _BOOLEAN | _DATE | _DATETIME | {"anytype", "address", "time"}
    ),
    "integer": _INTEGER | _NUMBER,
    "number": _NUMBER,
    "boolean": _BOOLEAN,
    "date": _DATE | _DATETIME,
    "datetime": _DATETIME | _DATE,
}

#: result -> CRM types (lower case) that can receive it.
RESULT_TARGETS: dict[str, set[str]] = {
    "status": {"picklist", "string", "textarea", "combobox"},
    "eligible": _BOOLEAN,
    "score": _NUMBER,
    "reason": {"string", "textarea"},
    "next_available": _DATE | _DATETIME,
    "recent_asks": _NUMBER,
    "last_ask": _DATE | _DATETIME,
    "available_for": {"multipicklist", "string", "textarea"},
}
assert set(RESULT_TARGETS) == set(RESULT_FIELDS)
#: The reference matching's text, one line per advocate: a (long) text area.
RESULT_TARGETS["suggested_references"] = {"textarea"}

_PICKLISTS = {"picklist", "multipicklist", "combobox"}


@dataclass
class OnlineReport:
    """What the CRM's schema says about a mapping."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Object:
    """One described object, looked up case-insensitively (as Salesforce does)."""

    def __init__(self, name: str, fields: Mapping[str, FieldInfo]) -> None:
        self.name = name
        self.fields = dict(fields)
        self.lower = {k.lower(): v for k, v in self.fields.items()}

    def get(self, field_name: str) -> FieldInfo | None:
        return self.fields.get(field_name) or self.lower.get(field_name.lower())

    def missing(self, field_name: str) -> str:
        return f"{self.name} has no field '{field_name}'{did_you_mean(field_name, self.fields)}"


def _readable(info: FieldInfo) -> bool:
    return bool(getattr(info, "readable", True))


def validate_online(source: SourceMapping, describe: Describe) -> OnlineReport:
    """Check ``source`` against the CRM schema ``describe`` returns.

    Every object is described once. A failing describe is one problem for that object, and
    the fields on it are not checked further.
    """
    report = OnlineReport()
    cache: dict[str, _Object | None] = {}

    def obj(name: str, where: str) -> _Object | None:
        key = name.lower()
        if key not in cache:
            try:
                cache[key] = _Object(name, describe(name))
            except (FatalApiError, KeyError) as exc:  # auth or budget problems propagate
                cache[key] = None
                reason = str(exc).splitlines()[0] if str(exc) else "not found"
                report.problems.append(
                    f"{where}: cannot describe object '{name}' ({reason}); check the name and "
                    "that the integration user can read it"
                )
        return cache[key]

    for entity, em in source.entities.items():
        loc = ("entities", entity.value)
        described = obj(em.object_name, source.where(*loc, "object"))
        if described is not None:
            _check_entity(source, em, described, report)
    for target in source.writeback:
        loc = ("writeback", target.entity)
        described = obj(target.object_name, source.where(*loc, "object"))
        if described is not None:
            _check_writeback(source, target, described, report)
    return report


def _check_entity(
    source: SourceMapping, em: EntityMapping, described: _Object, report: OnlineReport
) -> None:
    base = ("entities", em.entity.value)

    def exists(name: str, where: str) -> FieldInfo | None:
        info = described.get(name)
        if info is None:
            report.problems.append(f"{where}: {described.missing(name)}")
            return None
        if not _readable(info):
            report.problems.append(
                f"{where}: {described.name}.{info.name} is not readable by the integration "
                "user; grant read access in its permission set"
            )
            return None
        return info

    exists(em.primary_key, source.where(*base, "primary_key"))
    if em.replication_key:
        exists(em.replication_key, source.where(*base, "replication_key"))
    for i, flt in enumerate(em.filters):
        exists(flt.field, source.where(*base, "filter", i, "field"))
    for section, fields in (("fields", em.fields), ("extra", em.extra_fields)):
        for f in fields:
            where = source.where(*base, section, f.name)
            info = exists(f.crm_field, where)
            if info is not None:
                _check_field(described.name, f, info, where, source, base, section, report)


def _check_field(
    object_name: str,
    f: FieldMapping,
    info: FieldInfo,
    where: str,
    source: SourceMapping,
    base: tuple[str, str],
    section: str,
    report: OnlineReport,
) -> None:
    crm_type = str(info.type).lower()
    label = f"{object_name}.{info.name}"
    if not f.has_map and crm_type not in COMPATIBLE[f.type]:
        report.problems.append(
            f"{where}: {label} is a {crm_type} field and cannot feed {f.name} ({f.type}); "
            "map another field or translate its values with a 'map'"
        )
    if f.has_map and crm_type in _PICKLISTS and info.picklist_values:
        doc_map = _map_keys(source, base, section, f.name)
        allowed = list(info.picklist_values)
        for key in doc_map:
            if str(key) not in allowed:
                hint = did_you_mean(str(key), allowed)
                report.problems.append(
                    f"{source.where(*base, section, f.name, 'map', key)}: {label} has no "
                    f"picklist value '{key}'{hint}"
                )
    if info.calculated:
        report.warnings.append(
            f"{where}: {label} is a formula or roll-up field: its changes do not move the "
            "replication key, so it is refreshed only by the nightly reconciliation"
        )


def _map_keys(
    source: SourceMapping, base: tuple[str, str], section: str, name: str
) -> list[str | int]:
    """The value map's keys as written in the file (the compiled converter does not keep them)."""
    node: object = source.doc.data if source.doc is not None else None
    for key in (*base, section, name, "map"):
        if not isinstance(node, Mapping) or key not in node:
            return []
        node = node[key]
    if not isinstance(node, Mapping):
        return []
    return [k if isinstance(k, str | int) else str(k) for k in node]


def _check_writeback(
    source: SourceMapping, target: WritebackTarget, described: _Object, report: OnlineReport
) -> None:
    base = ("writeback", target.entity)
    for result, crm in target.fields.items():
        where = source.where(*base, "fields", result)
        info = described.get(crm)
        if info is None:
            report.problems.append(f"{where}: {described.missing(crm)}")
            continue
        label = f"{described.name}.{info.name}"
        if not info.updateable or info.calculated:
            report.problems.append(
                f"{where}: {label} is not updateable by the integration user; grant edit "
                "access (permission set Advocate_Sync_Integration) or map another field"
            )
        crm_type = str(info.type).lower()
        if crm_type not in RESULT_TARGETS[result]:
            kinds = ", ".join(sorted(RESULT_TARGETS[result]))
            report.problems.append(
                f"{where}: {label} is a {crm_type} field and cannot receive {result}; "
                f"use a field of type {kinds}"
            )
        elif result == "status" and crm_type in _PICKLISTS and info.picklist_values:
            missing = _missing_statuses(info.picklist_values)
            if missing:
                report.problems.append(
                    f"{where}: {label} lacks the picklist value(s) "
                    f"{', '.join(repr(m) for m in missing)}; add them to the picklist"
                )
        if not _readable(info):
            report.problems.append(
                f"{where}: {label} is not readable by the integration user; the writeback "
                "compares with the current value, so grant read access too"
            )
    if target.override_field:
        where = source.where(*base, "override_field")
        info = described.get(target.override_field)
        if info is None:
            report.problems.append(
                f"{where}: {described.missing(target.override_field)} (the override field); "
                "deploy it or set override_field: null"
            )
        elif str(info.type).lower() not in _BOOLEAN:
            report.problems.append(
                f"{where}: {described.name}.{info.name} is a {str(info.type).lower()} field; "
                "the override field must be a checkbox"
            )


def _missing_statuses(values: Iterable[str]) -> list[str]:
    have = set(values)
    return [s.value for s in Status if s.value not in have]
