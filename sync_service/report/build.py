"""Build the whole report from the store: one connection, one consistent snapshot of figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.mapping import Mappings
from sync_service.report.asks import demand_section, most_asked_section, utilisation_section
from sync_service.report.coverage import DEFAULT_FIELDS, GroupField, resolve_field
from sync_service.report.coverage import coverage_section as _coverage
from sync_service.report.history import pool_section, retention_section
from sync_service.report.tables import Report
from sync_service.settings import CoverageTarget, Settings

#: The sections in page order; ``/report/{key}.csv`` serves each one's main table.
SECTION_KEYS: tuple[str, ...] = (
    "pool",
    "utilisation",
    "coverage",
    "demand",
    "retention",
    "most-asked",
)


@dataclass(frozen=True)
class ReportOptions:
    """What the report looks at: the window, the history, the extra coverage fields, targets."""

    window_days: int = 90
    history_weeks: int = 104
    top: int = 20
    by: tuple[GroupField, ...] = ()
    targets: Mapping[str, CoverageTarget] = field(default_factory=dict)
    crm_url: str | None = None

    @property
    def fields(self) -> list[GroupField]:
        """The coverage fields: region, segment, industry, then ``--by`` (no repeats)."""
        out = [GroupField(name, Entity.ACCOUNT) for name in DEFAULT_FIELDS]
        for f in self.by:
            if all(f.name != have.name for have in out):
                out.append(f)
        return out


def options_from_settings(
    settings: Settings,
    mappings: Mappings | None,
    *,
    window_days: int | None = None,
    by: Sequence[str] = (),
) -> ReportOptions:
    """The report's options from the settings, overridden by the command line.

    Raises:
        ConfigError: a ``--by`` field or a coverage target names a field the mapping lacks.
    """
    cfg = settings.report
    names = list(dict.fromkeys([*by, *cfg.coverage_targets]))
    fields = tuple(resolve_field(n, mappings) for n in names if n not in DEFAULT_FIELDS)
    return ReportOptions(
        window_days=window_days or cfg.window_days,
        history_weeks=cfg.history_weeks,
        top=cfg.top,
        by=fields,
        targets={n.rpartition(".")[2]: t for n, t in cfg.coverage_targets.items()},
        crm_url=cfg.crm_url or settings.salesforce.instance_url,
    )


def build_report(engine: Engine, options: ReportOptions, now: datetime) -> Report:
    """Every section's figures, read in one transaction so they describe the same moment."""
    with engine.connect() as conn:
        # One snapshot for every query: a run committing meanwhile cannot split the report.
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        elif conn.dialect.name == "sqlite":
            # pysqlite opens no transaction for reads; a deferred one is a WAL read snapshot,
            # ended by the rollback the pool makes when the connection is returned.
            conn.exec_driver_sql("BEGIN")
        sections = [
            pool_section(conn, now, options.history_weeks),
            utilisation_section(
                conn, now, options.window_days, top=options.top, crm_url=options.crm_url
            ),
            _coverage(conn, options.fields, options.targets),
            demand_section(conn, now, options.window_days, options.history_weeks),
            retention_section(conn, now, options.window_days),
            most_asked_section(
                conn, now, options.window_days, top=options.top, crm_url=options.crm_url
            ),
        ]
    return Report(
        generated_at=now,
        window_days=options.window_days,
        history_weeks=options.history_weeks,
        sections=sections,
        crm_url=options.crm_url,
    )
