"""Problems found in a mapping file, as lines an admin can act on.

A problem is a key path and a text; :func:`format_problems` turns them into
``file:line:col: text`` lines sorted by position. :func:`pydantic_problems` translates the
schema's validation errors into the same form, with hints: what a missing key should hold,
what to write instead of a value of the wrong type, and which keys are allowed where an unknown
one stands (with a did-you-mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from canonical.model import FieldType
from canonical.yaml import YamlDocument, allowed_keys, did_you_mean
from connectors.base import FilterOperator

FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
OPERATORS: tuple[str, ...] = get_args(FilterOperator)

#: What to say when a key is missing, by key name.
MISSING_HINTS: dict[str, str] = {
    "object": "name the CRM object to read or write (e.g. Contact)",
    "fields": "list the fields to map (canonical name: CRM field)",
    "entities": "map at least one canonical entity (e.g. contacts)",
    "from": "name the CRM field this value comes from",
    "type": "extra fields need a type: one of " + ", ".join(FIELD_TYPES),
    "field": "name the CRM field to filter on",
    "operator": "give one of " + ", ".join(OPERATORS),
    "values": "give a list of values, e.g. [Customer]",
}

Problem = tuple[Sequence[str | int], str]

#: What to write instead, by pydantic error type.
TYPE_HINTS: dict[str, str] = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text (a name)",
    "dict_type": "must be a mapping of keys (name: value)",
    "list_type": "must be a list, e.g. [a, b]",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
}

#: What a whole entry should look like, by model (for an entry of the wrong shape).
SHAPES: dict[str, str] = {
    "FileSpec": "the file must be a mapping with 'entities:' (and 'writeback:')",
    "EntitySpec": "an entity is a mapping with object: and fields:",
    "FieldSpec": "give the CRM field name, or a mapping like {from: Field__c, default: ...}",
    "ExtraFieldSpec": "an extra field is a mapping like {from: Field__c, type: string}",
    "FilterSpec": "a filter is a mapping like {field: Type, operator: IN, values: [Customer]}",
    "WritebackSpec": "a writeback entry is a mapping with object: and fields:",
}


def clip(value: Any) -> str:
    """``repr(value)``, cut to 40 characters for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def pydantic_problems(
    exc: ValidationError, prefix: Sequence[str | int], model: type[BaseModel]
) -> list[Problem]:
    """The problems of ``exc`` (raised validating ``model`` at key path ``prefix``)."""
    out: list[Problem] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if p != "[key]"]
        full = [*prefix, *loc]
        kind = err["type"]
        last = str(loc[-1]) if loc else ""
        if kind == "extra_forbidden":
            allowed = allowed_keys(model, loc[:-1])
            text = f"unknown key '{last}'{did_you_mean(last, allowed)}"
            if allowed:
                text += f" (allowed here: {', '.join(allowed)})"
        elif kind == "missing":
            hint = MISSING_HINTS.get(last, "add it")
            text = f"'{last}' is missing; {hint}"
        elif kind == "literal_error":
            expected = str(err.get("ctx", {}).get("expected", ""))
            text = f"'{last}' cannot be {clip(err['input'])}; use one of {expected}"
        elif kind == "value_error":
            text = err["msg"].removeprefix("Value error, ")
        elif "[key]" in err["loc"]:
            text = f"key {clip(err['input'])} must be text"
        elif kind in ("model_type", "model_attributes_type") and not loc:
            shape = SHAPES.get(model.__name__, "expected a mapping of keys here")
            text = f"{shape} (got {clip(err['input'])})"
        elif kind in TYPE_HINTS:
            text = f"'{last}' {TYPE_HINTS[kind]} (got {clip(err['input'])})"
        else:
            what = err["msg"][:1].lower() + err["msg"][1:]
            text = f"'{last}': {what} (got {clip(err['input'])})" if last else what
        out.append((full, text))
    return out


def format_problems(doc: YamlDocument, problems: list[Problem]) -> list[str]:
    """``file:line:col: text`` for each problem, in the order they stand in the file."""
    located = []
    for loc, text in problems:
        pos = doc.locate(loc) or (0, 0)
        located.append((pos, f"{doc.where(loc)}: {text}"))
    located.sort(key=lambda item: item[0])
    return [line for _, line in located]
