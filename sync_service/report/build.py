"""Build the whole report from the store: one consistent snapshot of figures, read in parallel."""

from __future__ import annotations

import queue
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from sync_service.report.influence import influence_section
from sync_service.report.tables import Report, Section
from sync_service.settings import CoverageTarget, Settings
from sync_service.store.snapshot import shared_snapshot

#: The sections in page order; ``/report/{key}.csv`` serves each one's main table.
SECTION_KEYS: tuple[str, ...] = (
    "pool",
    "utilisation",
    "coverage",
    "demand",
    "retention",
    "most-asked",
    "influence",
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


#: Readers of the sections at once: one per core of the small host the service is sized for.
DEFAULT_WORKERS = 2

Builder = Callable[[sa.Connection], Section]


def build_report(
    engine: Engine, options: ReportOptions, now: datetime, *, workers: int = DEFAULT_WORKERS
) -> Report:
    """Every section's figures, read on one snapshot of the store so they describe one moment.

    The sections are independent reads, run by ``workers`` threads on connections that share
    the snapshot (:func:`~sync_service.store.snapshot.shared_snapshot`): the database works
    with the GIL released, so two cores read two sections at once. ``workers=1`` reads them one
    by one on a single connection.
    """
    builders: list[Builder] = [
        lambda c: pool_section(c, now, options.history_weeks),
        lambda c: utilisation_section(
            c, now, options.window_days, top=options.top, crm_url=options.crm_url
        ),
        lambda c: _coverage(c, options.fields, options.targets),
        lambda c: demand_section(c, now, options.window_days, options.history_weeks),
        lambda c: retention_section(c, now, options.window_days),
        lambda c: most_asked_section(
            c, now, options.window_days, top=options.top, crm_url=options.crm_url
        ),
        lambda c: influence_section(c, now, options.history_weeks),
    ]
    with shared_snapshot(engine, max(1, min(workers, len(builders)))) as conns:
        sections = _run(builders, conns)
    return Report(
        generated_at=now,
        window_days=options.window_days,
        history_weeks=options.history_weeks,
        sections=sections,
        crm_url=options.crm_url,
    )


def _run(builders: Sequence[Builder], conns: Sequence[sa.Connection]) -> list[Section]:
    """Each builder on a free connection; the sections in the builders' order."""
    if len(conns) == 1:
        return [build(conns[0]) for build in builders]
    free: queue.SimpleQueue[sa.Connection] = queue.SimpleQueue()
    for conn in conns:
        free.put(conn)

    def on_a_free_connection(build: Builder) -> Section:
        conn = free.get()
        try:
            return build(conn)
        finally:
            free.put(conn)

    with ThreadPoolExecutor(len(conns), thread_name_prefix="report") as pool:
        return list(pool.map(on_a_free_connection, builders))
