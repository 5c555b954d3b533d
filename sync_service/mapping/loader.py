"""Load and validate ``mappings/*.yaml`` offline; every problem is reported at once.

Each problem is one line, ``file:line:col: what is wrong; what to do``::

    mappings/salesforce.yaml:14:9: contacts has no canonical field 'emial'; did you mean 'email'?

Checks: YAML syntax, the schema (unknown or missing keys, scalar types), canonical entity and
field names, declared types against the canonical ones, defaults and value maps against their
type, identifiers safe to put in a query, filter operators and values, writeback result names,
duplicates. Checks against the CRM's own schema live in :mod:`sync_service.mapping.online`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from canonical.errors import MappingError
from canonical.model import (
    CANONICAL_FIELDS,
    COMMON_FIELDS,
    RESULT_FIELDS,
    Entity,
    FieldType,
    System,
)
from canonical.yaml import YamlDocument, did_you_mean, load_yaml, plain
from connectors.base import FieldFilter
from sync_service.mapping.convert import build_converter, convert_static
from sync_service.mapping.model import (
    OPPORTUNITY_RESULTS,
    WRITEBACK_ENTITIES,
    EntityMapping,
    FieldMapping,
    Mappings,
    SourceMapping,
    WritebackEntity,
    WritebackTarget,
)
from sync_service.mapping.problems import (
    Problem,
    clip,
    format_problems,
    pydantic_problems,
)
from sync_service.mapping.schema import (
    EntitySpec,
    ExtraFieldSpec,
    FieldSpec,
    FileSpec,
    FilterSpec,
    WritebackSpec,
)

#: Mapping file name -> system.
FILES: dict[str, System] = {f"{s}.yaml": s for s in System}

#: A CRM object or field name safe to put in SOQL or a Gainsight query (no dots, spaces, quotes).
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
#: An extra field (feature) name: what a rule refers to.
FEATURE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: Per system: default primary key and replication key, and the default override field.
SYSTEM_DEFAULTS: dict[System, tuple[str, str, str | None]] = {
    System.SALESFORCE: ("Id", "SystemModstamp", "Advocate_Override__c"),
    System.GAINSIGHT: ("Gsid", "ModifiedDate", None),
}

_SINGLE_VALUE_OPERATORS = {"=", "!=", "<", "<=", ">", ">=", "LIKE"}

_SYNTAX_HINT = "check the indentation (spaces, not tabs) and quote values that contain ': ' or ' #'"


class _FileLoader:
    """Validates one mapping file, collecting problems with their key paths."""

    def __init__(self, doc: YamlDocument, system: System) -> None:
        self.doc = doc
        self.system = system
        self.problems: list[Problem] = []
        pk, rk, override = SYSTEM_DEFAULTS[system]
        self.default_pk = pk
        self.default_rk = rk
        self.default_override = override

    def add(self, loc: Sequence[str | int], text: str) -> None:
        self.problems.append((list(loc), text))

    def _validate(
        self, model: type[BaseModel], data: Any, loc: Sequence[str | int]
    ) -> BaseModel | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            self.problems.extend(pydantic_problems(exc, loc, model))
            return None

    def identifier(self, loc: Sequence[str | int], name: str, what: str) -> bool:
        if IDENTIFIER.match(name):
            return True
        self.add(
            loc,
            f"{what} {clip(name)} is not a valid API name: use letters, digits and "
            "underscores, starting with a letter (no dots, spaces or quotes)",
        )
        return False

    def load(self) -> SourceMapping | None:
        data = plain(self.doc.data, text_keys=False)
        if data is None:
            self.add([], "the file is empty; map at least one entity under 'entities:'")
            return None
        if not isinstance(data, dict):
            self.add([], "the file must be a mapping with 'entities:' (and 'writeback:')")
            return None
        spec = self._validate(FileSpec, data, [])
        entities_raw: dict[Any, Any]
        writeback_raw: dict[Any, Any]
        if spec is None:
            # Still check the entities that are there, so every problem shows at once.
            ent, wb = data.get("entities"), data.get("writeback")
            entities_raw = ent if isinstance(ent, dict) else {}
            writeback_raw = wb if isinstance(wb, dict) else {}
        else:
            file_spec = cast(FileSpec, spec)
            entities_raw = file_spec.entities
            writeback_raw = file_spec.writeback or {}
        writeback = self._writeback(writeback_raw)
        entities: dict[Entity, EntityMapping] = {}
        for name, body in entities_raw.items():
            em = self._entity(name, body, writeback)
            if em is not None:
                entities[em.entity] = em
        if self.problems:
            return None
        return SourceMapping(
            system=self.system,
            path=self.doc.path,
            entities=entities,
            writeback=writeback,
            doc=self.doc,
        )

    # -- entities -------------------------------------------------------------------------

    def _entity(
        self, name: Any, body: Any, writeback: list[WritebackTarget]
    ) -> EntityMapping | None:
        loc: list[str | int] = ["entities", name]
        valid_names = [e.value for e in Entity]
        entity: Entity | None = None
        if name in valid_names:
            entity = Entity(name)
        else:
            self.add(
                loc,
                f"unknown canonical entity {clip(name)}{did_you_mean(str(name), valid_names)} "
                f"(one of {', '.join(valid_names)})",
            )
        parsed = self._validate(EntitySpec, body, loc)
        if parsed is None or entity is None:
            return None
        spec = cast(EntitySpec, parsed)
        before = len(self.problems)
        self.identifier([*loc, "object"], spec.object, "object")
        pk = spec.primary_key or self.default_pk
        rk = spec.replication_key if "replication_key" in spec.model_fields_set else self.default_rk
        self.identifier([*loc, "primary_key"], pk, "primary_key")
        if rk is not None:
            self.identifier([*loc, "replication_key"], rk, "replication_key")
        filters: list[FieldFilter] = []
        for i, raw_filter in enumerate(spec.filter):
            floc: list[str | int] = [*loc, "filter", i]
            fs = self._validate(FilterSpec, raw_filter, floc)
            if fs is not None and (ff := self._filter(floc, cast(FilterSpec, fs))) is not None:
                filters.append(ff)
        canon = CANONICAL_FIELDS[entity]
        fields: list[FieldMapping] = []
        for fname, fraw in spec.fields.items():
            floc = [*loc, "fields", fname]
            parsed_field = self._validate(FieldSpec, fraw, floc)
            if parsed_field is None:
                continue
            fspec = cast(FieldSpec, parsed_field)
            if fname in COMMON_FIELDS:
                key = "primary_key" if fname == "id" else "replication_key"
                self.add(floc, f"'{fname}' comes from {key}; remove it from fields")
                continue
            if fname not in canon:
                self.add(
                    floc,
                    f"{entity.value} has no canonical field '{fname}'{did_you_mean(fname, canon)}"
                    " (map other CRM fields under 'extra:')",
                )
                continue
            ftype = canon[fname]
            if fspec.type is not None and fspec.type != ftype:
                self.add(
                    [*floc, "type"],
                    f"{entity.value}.{fname} is {ftype}, not {fspec.type}; "
                    f"remove 'type' or set it to {ftype}",
                )
                continue
            fm = self._field(floc, fname, ftype, fspec, is_extra=False)
            if fm is not None:
                fields.append(fm)
        extras: list[FieldMapping] = []
        for xname, xraw in spec.extra.items():
            xloc = [*loc, "extra", xname]
            parsed_extra = self._validate(ExtraFieldSpec, xraw, xloc)
            if parsed_extra is None:
                continue
            xspec = cast(ExtraFieldSpec, parsed_extra)
            if not FEATURE_NAME.match(xname):
                self.add(
                    xloc,
                    f"extra field name {clip(xname)} must be lower_snake_case "
                    "(letters, digits, underscores; it is the feature name rules use)",
                )
                continue
            if xname in canon or xname in COMMON_FIELDS:
                self.add(
                    xloc,
                    f"extra field '{xname}' has the name of a canonical field of "
                    f"{entity.value}; map it under 'fields:' or choose another name",
                )
                continue
            fm = self._field(xloc, xname, xspec.type, xspec, is_extra=True)
            if fm is not None:
                extras.append(fm)
        crm_fields: tuple[str, ...] = ()
        for target in writeback:
            if WRITEBACK_ENTITIES[target.entity] is entity and target.object_name == spec.object:
                crm_fields = target.crm_fields
        if len(self.problems) > before:
            return None
        return EntityMapping(
            system=self.system,
            entity=entity,
            object_name=spec.object,
            primary_key=pk,
            replication_key=rk,
            filters=tuple(filters),
            fields=tuple(fields),
            extra_fields=tuple(extras),
            crm_fields=crm_fields,
        )

    def _field(
        self,
        loc: list[str | int],
        name: str,
        ftype: FieldType,
        spec: FieldSpec | ExtraFieldSpec,
        *,
        is_extra: bool,
    ) -> FieldMapping | None:
        ok = self.identifier([*loc, "from"], spec.from_, "CRM field")
        default = None
        if spec.default is not None:
            try:
                default = convert_static(ftype, spec.default)
            except (ValueError, TypeError, OverflowError):
                self.add(
                    [*loc, "default"],
                    f"default {clip(spec.default)} is not a valid {ftype} for {name}",
                )
                ok = False
            if spec.required:
                self.add(
                    [*loc, "required"],
                    f"{name} has a default, so 'required' never applies; remove one of them",
                )
                ok = False
        table: dict[Any, Any] | None = None
        if spec.map is not None:
            table = {}
            for key, value in spec.map.items():
                try:
                    table[key] = convert_static(ftype, value)
                except (ValueError, TypeError, OverflowError):
                    self.add(
                        [*loc, "map", key],
                        f"value map entry {clip(key)}: {clip(value)} is not a valid {ftype} "
                        f"for {name}",
                    )
                    ok = False
        elif spec.strict:
            self.add([*loc, "strict"], f"'strict' needs a 'map' of allowed values for {name}")
            ok = False
        if not ok:
            return None
        if is_extra and default is not None:
            default = convert_static(ftype, default)
            if ftype in ("date", "datetime"):
                default = default.isoformat()
        return FieldMapping(
            crm_field=spec.from_,
            name=name,
            type=ftype,
            convert=build_converter(
                ftype,
                value_map=table,
                strict=spec.strict,
                transform=spec.transform,
                json_output=is_extra,
            ),
            required=spec.required,
            default=default,
            is_extra=is_extra,
            line=self.doc.where(loc),
            has_map=table is not None,
            transform=tuple(spec.transform),
        )

    def _filter(self, loc: list[str | int], spec: FilterSpec) -> FieldFilter | None:
        ok = self.identifier([*loc, "field"], spec.field, "filter field")
        op = spec.operator
        if op in _SINGLE_VALUE_OPERATORS and len(spec.values) != 1:
            self.add(
                [*loc, "values"],
                f"operator '{op}' takes exactly one value (got {len(spec.values)})",
            )
            ok = False
        elif not spec.values:
            self.add([*loc, "values"], f"operator '{op}' needs at least one value")
            ok = False
        for i, value in enumerate(spec.values):
            if value is not None and not isinstance(value, str | int | float | bool | date):
                self.add(
                    [*loc, "values", i],
                    "filter values must be text, numbers, true/false, dates or null",
                )
                ok = False
        if op == "LIKE" and spec.values and not isinstance(spec.values[0], str):
            self.add([*loc, "values"], "operator 'LIKE' takes a text pattern, e.g. 'Acme%'")
            ok = False
        if not ok:
            return None
        return FieldFilter(field=spec.field, operator=op, values=tuple(spec.values))

    # -- writeback ------------------------------------------------------------------------

    def _writeback(self, raw: dict[Any, Any]) -> list[WritebackTarget]:
        targets: list[WritebackTarget] = []
        seen_objects: dict[tuple[str, str], str] = {}
        for name, body in raw.items():
            loc: list[str | int] = ["writeback", name]
            valid = name in WRITEBACK_ENTITIES
            if not valid:
                self.add(
                    loc,
                    f"unknown writeback entry {clip(name)}"
                    f"{did_you_mean(str(name), WRITEBACK_ENTITIES)} "
                    f"(one of {', '.join(WRITEBACK_ENTITIES)})",
                )
            parsed = self._validate(WritebackSpec, body, loc)
            if parsed is None or not valid:
                continue
            spec = cast(WritebackSpec, parsed)
            ok = self.identifier([*loc, "object"], spec.object, "object")
            override = (
                spec.override_field
                if "override_field" in spec.model_fields_set
                else self.default_override
            )
            if override is not None:
                ok = self.identifier([*loc, "override_field"], override, "override_field") and ok
            if not spec.fields:
                self.add([*loc, "fields"], f"map at least one result ({', '.join(RESULT_FIELDS)})")
                ok = False
            used: dict[str, str] = {}
            results = OPPORTUNITY_RESULTS if name == "opportunity" else tuple(RESULT_FIELDS)
            for result, crm in spec.fields.items():
                rloc = [*loc, "fields", result]
                if result not in results:
                    self.add(
                        rloc,
                        f"unknown result '{result}'{did_you_mean(result, results)} "
                        f"(one of {', '.join(results)})",
                    )
                    ok = False
                    continue
                if not self.identifier(rloc, crm, "CRM field"):
                    ok = False
                    continue
                key = (spec.object.lower(), crm.lower())
                if crm.lower() in used:
                    self.add(
                        rloc,
                        f"{spec.object}.{crm} already receives '{used[crm.lower()]}'; "
                        "each CRM field can receive one result",
                    )
                    ok = False
                elif key in seen_objects:
                    self.add(
                        rloc,
                        f"{spec.object}.{crm} already receives '{seen_objects[key]}'; "
                        "each CRM field can receive one result",
                    )
                    ok = False
                used[crm.lower()] = result
                if override is not None and crm.lower() == override.lower():
                    self.add(
                        rloc,
                        f"{spec.object}.{crm} is the override field; results cannot be "
                        "written to it",
                    )
                    ok = False
            for crm_lower, result in used.items():
                seen_objects[(spec.object.lower(), crm_lower)] = f"{name}.{result}"
            if ok:
                targets.append(
                    WritebackTarget(
                        target=self.system,
                        entity=cast(WritebackEntity, name),
                        object_name=spec.object,
                        fields=dict(spec.fields),
                        owned=spec.owned,
                        override_field=override,
                    )
                )
        return targets


def load_source(path: Path, system: System) -> SourceMapping:
    """Load one mapping file.

    Raises:
        MappingError: listing every problem in the file.
    """
    try:
        doc = load_yaml(path, MappingError)
    except MappingError as exc:
        if "YAML syntax error" not in exc.message:
            raise
        hint = "remove one of the two" if "duplicate key" in exc.message else _SYNTAX_HINT
        msg = f"{exc.message}; {hint}"
        raise MappingError(msg) from None
    loader = _FileLoader(doc, system)
    source = loader.load()
    if source is None:
        lines = format_problems(doc, loader.problems)
        raise MappingError(lines[0], problems=lines)
    return source


def digest_files(paths: Iterable[Path]) -> str:
    """SHA-256 over the files' names and contents (stable across machines)."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def load_mappings(mappings_dir: Path) -> Mappings:
    """Load and validate every mapping file in ``mappings_dir``.

    ``salesforce.yaml`` and ``gainsight.yaml`` are read when present (at least one must be);
    any other ``*.yaml`` there is an error (most likely a misspelt name).

    Raises:
        MappingError: listing every problem of every file, one ``file:line:col: ...`` line each.
    """
    mappings_dir = Path(mappings_dir)
    if not mappings_dir.is_dir():
        msg = f"{mappings_dir}: mappings directory not found; create it or set SYNC_MAPPINGS_DIR"
        raise MappingError(msg)
    problems: list[str] = []
    found: list[Path] = []
    for p in sorted(mappings_dir.iterdir()):
        if p.suffix in (".yaml", ".yml") and p.name not in FILES:
            problems.append(
                f"{p}: unknown mapping file; name it one of {', '.join(FILES)} "
                f"or move it out of {mappings_dir}{did_you_mean(p.name, FILES)}"
            )
    sources: dict[System, SourceMapping] = {}
    for name, system in FILES.items():
        path = mappings_dir / name
        if not path.exists():
            continue
        found.append(path)
        try:
            sources[system] = load_source(path, system)
        except MappingError as exc:
            problems.extend(exc.problems)
    if not found and not problems:
        problems.append(
            f"{mappings_dir}: no mapping files; add salesforce.yaml and/or gainsight.yaml"
        )
    if not problems:
        problems.extend(_cross_file_problems(list(sources.values())))
    if problems:
        # One line each, whatever odd key text the file held.
        problems = [p.replace("\r", "\\r").replace("\n", "\\n") for p in problems]
        raise MappingError(problems[0], problems=problems)
    return Mappings(
        path=mappings_dir,
        salesforce=sources.get(System.SALESFORCE),
        gainsight=sources.get(System.GAINSIGHT),
        digest=digest_files(found),
    )


def _cross_file_problems(sources: list[SourceMapping]) -> list[str]:
    """An extra field name must mean one thing (entity and type) across all files."""
    problems: list[str] = []
    seen: dict[str, tuple[Entity, str, str]] = {}
    for source in sources:
        for em in source.entities.values():
            for f in em.extra_fields:
                prior = seen.get(f.name)
                if prior is None:
                    seen[f.name] = (em.entity, f.type, f.line)
                elif (prior[0], prior[1]) != (em.entity, f.type):
                    problems.append(
                        f"{f.line}: extra field '{f.name}' is already declared as "
                        f"{prior[0].value} {prior[1]} at {prior[2]}; rename one of them"
                    )
    return problems
