"""What the writeback needs from a mapping's writeback target, and where its records live.

The mappings package (``sync_service.mapping``) builds :class:`WritebackTarget` objects from
``mappings/*.yaml``; the writeback only reads the attributes named in
:class:`WritebackTargetLike`, so any object with them (a test double included) will do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

import sqlalchemy as sa

from canonical.errors import WritebackError
from canonical.model import RESULT_FIELDS, System
from sync_service.store.models import accounts, contacts

EntityKind = Literal["contact", "account"]


class WritebackTargetLike(Protocol):
    """A CRM object that receives results: ``fields`` maps result name -> CRM field."""

    @property
    def target(self) -> str:
        """``salesforce`` or ``gainsight``."""

    @property
    def entity(self) -> str:
        """``contact`` or ``account`` (the plural table names are accepted too)."""

    @property
    def object_name(self) -> str:
        """The CRM object written (``Contact``, ``Account``, ``Company``)."""

    @property
    def fields(self) -> Mapping[str, str]:
        """Result name (``status``, ``eligible``, ...) -> CRM field."""

    @property
    def owned(self) -> bool:
        """True when the service owns the fields outright (a person's edit is overwritten)."""

    @property
    def override_field(self) -> str | None:
        """A CRM checkbox that, when set on a record, makes the service leave it alone."""


def entity_kind(target: WritebackTargetLike) -> EntityKind:
    """The evaluations' ``entity_type`` this target writes (``contact`` or ``account``).

    Raises:
        WritebackError: when the target names another entity.
    """
    name = str(getattr(target.entity, "value", target.entity)).lower()
    if name in ("contact", "contacts"):
        return "contact"
    if name in ("account", "accounts"):
        return "account"
    msg = (
        f"writeback target {target.target}.{target.object_name} names entity '{name}'; "
        "only contact and account results can be written"
    )
    raise WritebackError(msg)


def record_table(target: WritebackTargetLike) -> sa.Table:
    """The canonical table holding the target's CRM records (with ``extra['_crm']``)."""
    return contacts if entity_kind(target) == "contact" else accounts


def link_column(target: WritebackTargetLike) -> sa.ColumnElement[str]:
    """The column of :func:`record_table` that holds the Salesforce id evaluations are keyed by.

    Salesforce rows are keyed by that id itself; Gainsight rows carry the Salesforce id they
    were matched to.
    """
    table = record_table(target)
    if target.target == System.SALESFORCE:
        return table.c.id
    return table.c.sf_contact_id if entity_kind(target) == "contact" else table.c.sf_account_id


def check_target(target: WritebackTargetLike) -> None:
    """Refuse a target that routes an unknown result name.

    Raises:
        WritebackError: naming the target and the unknown names.
    """
    entity_kind(target)
    unknown = sorted(set(target.fields) - set(RESULT_FIELDS))
    if unknown:
        msg = (
            f"writeback target {target.target}.{target.object_name} routes unknown results "
            f"{', '.join(unknown)}; allowed: {', '.join(RESULT_FIELDS)}"
        )
        raise WritebackError(msg)
