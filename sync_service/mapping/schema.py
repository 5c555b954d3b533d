"""The shape of a mapping file, as pydantic models (``extra="forbid"``: a typo is an error).

These models check structure and scalar types only; the loader then checks meaning (canonical
names, identifiers, defaults against types, duplicates) with positions in the file. See
``MAPPINGS.md`` for the admin's view of the same format.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canonical.model import FieldType
from connectors.base import FilterOperator

Transform = Literal["strip", "lower", "upper"]

_Strict = ConfigDict(extra="forbid", populate_by_name=False, strict=False)


class FieldSpec(BaseModel):
    """One canonical field: ``name: CrmField`` or ``name: {from: CrmField, ...}``."""

    model_config = _Strict

    from_: str = Field(alias="from")
    type: FieldType | None = None
    required: bool = False
    default: Any = None
    map: dict[Any, Any] | None = None
    strict: bool = False
    transform: list[Transform] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # ``email: Email`` is short for ``email: {from: Email}``.
        if isinstance(data, str):
            return {"from": data}
        return data


class ExtraFieldSpec(FieldSpec):
    """An extra field: like a canonical field, but ``type`` is required (rules need it)."""

    type: FieldType  # type: ignore[assignment]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return data


class FilterSpec(BaseModel):
    """``{field: Type, operator: IN, values: [Customer, Partner]}``; ANDed together."""

    model_config = _Strict

    field: str
    operator: FilterOperator
    values: list[Any]


class EntitySpec(BaseModel):
    """How one canonical entity is read from one CRM object."""

    model_config = _Strict

    object: str
    primary_key: str | None = None
    replication_key: str | None = None
    # Items are validated one by one (FilterSpec, FieldSpec, ExtraFieldSpec) so that one broken
    # field does not hide the problems of the others.
    filter: list[Any] = Field(default_factory=list)
    fields: dict[str, Any]
    extra: dict[str, Any] = Field(default_factory=dict)


class WritebackSpec(BaseModel):
    """Where the results for contacts or accounts are written."""

    model_config = _Strict

    object: str
    owned: bool = False
    override_field: str | None = None
    fields: dict[str, str]


class FileSpec(BaseModel):
    """A whole mapping file; entities and writeback entries are validated one by one."""

    model_config = _Strict

    version: Literal[1] = 1
    entities: dict[str, Any]
    writeback: dict[str, Any] | None = None
