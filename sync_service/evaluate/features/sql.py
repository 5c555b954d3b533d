"""The SQL pieces the features' queries are built from, and the few dialect differences.

Conventions every query follows: Salesforce rows (``source = 'salesforce'``) are the contacts
and accounts, Gainsight rows add to them; rows with ``deleted = true`` are ignored everywhere;
an account range is ``(lo, hi]`` of ids (``None``: open at that end).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from canonical.model import System
from sync_service.store.models import eval_scope

SALESFORCE = System.SALESFORCE
GAINSIGHT = System.GAINSIGHT


def live(t: Any) -> ColumnElement[bool]:
    """The rows of ``t`` not marked deleted."""
    live_: ColumnElement[bool] = t.c.deleted == sa.false()
    return live_


class Dialect:
    """The few things that differ between SQLite and PostgreSQL: dates and bound values."""

    def __init__(self, name: str) -> None:
        self.name = name

    def to_date(self, expr: Any) -> Any:
        """A UTC timestamp column as its UTC date."""
        if self.name == "sqlite":
            return sa.func.date(expr)
        return sa.cast(sa.func.timezone("UTC", expr), sa.Date)

    def ts(self, value: datetime) -> Any:
        """A timestamp literal comparable with a stored UTC timestamp."""
        if self.name == "sqlite":
            # the store's text format for UTC timestamps on SQLite (naive, microseconds)
            text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            return sa.literal(text, sa.String())
        return sa.literal(value, sa.DateTime(timezone=True))

    def day(self, value: date) -> Any:
        """A date literal comparable with a stored date."""
        if self.name == "sqlite":
            return sa.literal(value.isoformat(), sa.String())
        return sa.literal(value, sa.Date())


#: An ask's outcome as one small integer (:meth:`~.plan.FeaturePlan.ask_codes`).
OPEN, DECLINED_CODE, COMPLETED_CODE, CLOSED = 0, 1, 2, 3


def extra_value(table: sa.Table, key: str, link: Any) -> Any:
    """An admin-mapped ``extra`` value of a Salesforce row, else of the Gainsight row linked to it.

    ``link`` is the Gainsight rows' column holding the Salesforce id (``sf_contact_id`` /
    ``sf_account_id``): a Gainsight field mapped under ``extra:`` reaches the rules as a
    Salesforce one does. Several linked Gainsight rows: the greatest value, as with opt-in.
    """
    gs = table.alias(f"gs_{table.name}")
    glink = gs.c[link.name]
    from_gs = (
        sa.select(sa.func.max(gs.c.extra[key].as_string()))
        .where(gs.c.source == GAINSIGHT, live(gs), glink == table.c.id)
        .scalar_subquery()
    )
    return sa.func.coalesce(table.c.extra[key].as_string(), from_gs)


def norm_priority(col: Any) -> Any:
    """A ticket priority as features name it: ``P 1`` -> ``p_1``."""
    return sa.func.lower(sa.func.replace(col, " ", "_"))


def id_range(
    col: Any, lo: str | None, hi: str | None, *, scoped: bool = False
) -> list[ColumnElement[bool]]:
    """``col`` in ``(lo, hi]``; an end that is None is open.

    ``scoped``: and listed in ``eval_scope`` (an incremental evaluation, see sync.changes).
    """
    out: list[ColumnElement[bool]] = []
    if scoped:
        out.append(col.in_(sa.select(eval_scope.c.id)))
    if lo is not None:
        out.append(col > lo)
    if hi is not None:
        out.append(col <= hi)
    return out


def tri(col: Any) -> Any:
    """A boolean over rows: true if any row says true, false if some say false, else NULL."""
    # true if any row says true, false if some say false and none true, NULL if none knows
    return sa.func.max(sa.case((col == sa.true(), 1), (col == sa.false(), 0), else_=None))
