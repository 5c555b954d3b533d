"""The writeback as a job: targets from the mappings, connectors from the settings.

:func:`writeback_job` is what ``sync-service writeback`` and the pipeline's ``writeback`` job
call; tests call :func:`~sync_service.writeback.runner.run_writeback` with fakes directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.engine import Engine

from connectors.base import Connector
from sync_service.factory import build_connector
from sync_service.mapping import Mappings, WritebackTarget, load_mappings
from sync_service.ops.progress import ProgressHook
from sync_service.ops.runs import Run
from sync_service.settings import Settings
from sync_service.sync.changes import incremental_enabled
from sync_service.writeback.report import WritebackReport
from sync_service.writeback.runner import run_writeback


def writeback_targets(mappings: Mappings, settings: Settings) -> list[WritebackTarget]:
    """The targets to write: Salesforce's, and Gainsight's when its writeback is enabled.

    Only the evaluation's targets (contacts and accounts): the opportunity target receives the
    reference matching's suggestions, which the match stage writes itself.
    """
    targets: list[WritebackTarget] = []
    if mappings.salesforce is not None and settings.salesforce.enabled:
        targets += mappings.salesforce.writeback
    if (
        mappings.gainsight is not None
        and settings.gainsight.enabled
        and settings.gainsight.writeback_enabled
    ):
        targets += mappings.gainsight.writeback
    return [t for t in targets if t.entity in ("contact", "account")]


def build_connectors(settings: Settings, systems: Iterable[str]) -> dict[str, Connector]:
    """One connector per system named, built by :mod:`sync_service.factory`.

    Raises:
        SettingsError: a system is disabled or not configured.
    """
    out: dict[str, Connector] = {}
    for system in sorted(set(systems)):
        # The Gainsight connector refuses writes unless told; the writeback only names a
        # Gainsight target when gainsight.writeback_enabled is set.
        out[system] = build_connector(
            settings, system, writes_enabled=settings.gainsight.writeback_enabled
        )
    return out


def writeback_job(
    engine: Engine,
    settings: Settings,
    *,
    run: Run | None = None,
    connectors: Mapping[str, Connector] | None = None,
    mappings: Mappings | None = None,
    dry_run: bool = False,
    confirm: bool = False,
    retry_failed: bool = False,
    progress: ProgressHook | None = None,
) -> WritebackReport:
    """Run the writeback for every mapped target.

    Args:
        engine: the store.
        settings: the service settings.
        run: the run record to fill.
        connectors: system -> connector; built from ``settings`` (and closed) when None.
        mappings: the loaded mappings; read from ``settings.mappings_dir`` when None.
        dry_run: count and show what would change, write nothing.
        confirm: release a writeback held by the blast-radius guard.
        retry_failed: send records the CRM refused before once more.
        progress: told as each batch is sent (a terminal's bar).
    """
    mappings = mappings if mappings is not None else load_mappings(settings.mappings_dir)
    targets = writeback_targets(mappings, settings)
    own = connectors is None and not dry_run
    conns: Mapping[str, Connector] = connectors or {}
    if own:
        conns = build_connectors(settings, {t.target for t in targets})
    try:
        return run_writeback(
            engine,
            targets,
            conns,
            settings.writeback,
            run=run,
            dry_run=dry_run,
            confirm=confirm,
            retry_failed=retry_failed,
            chunk_size=settings.sync.batch_size,
            write_erased=settings.privacy.write_erased_status,
            progress=progress,
            incremental=incremental_enabled(),
        )
    finally:
        if own:
            for connector in conns.values():
                connector.close()
