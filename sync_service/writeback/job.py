"""The writeback as a job: targets from the mappings, connectors from the settings.

:func:`writeback_job` is what ``sync-service writeback`` and the pipeline's ``writeback`` job
call; tests call :func:`~sync_service.writeback.runner.run_writeback` with fakes directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from canonical.errors import WritebackError
from connectors.base import Connector
from sync_service.mapping import Mappings, WritebackTarget, load_mappings
from sync_service.runs import Run
from sync_service.settings import Settings
from sync_service.writeback.report import WritebackReport
from sync_service.writeback.runner import run_writeback


def writeback_targets(mappings: Mappings, settings: Settings) -> list[WritebackTarget]:
    """The targets to write: Salesforce's, and Gainsight's when its writeback is enabled."""
    targets: list[WritebackTarget] = []
    if mappings.salesforce is not None and settings.salesforce.enabled:
        targets += mappings.salesforce.writeback
    if (
        mappings.gainsight is not None
        and settings.gainsight.enabled
        and settings.gainsight.writeback_enabled
    ):
        targets += mappings.gainsight.writeback
    return targets


def build_connectors(settings: Settings, systems: Iterable[str]) -> dict[str, Connector]:
    """One connector per system named, built from the settings.

    Raises:
        WritebackError: a system is not configured (no base URL) or its connector is missing.
    """
    out: dict[str, Connector] = {}
    for system in sorted(set(systems)):
        if system == "gainsight":
            out[system] = _gainsight(settings)
        elif system == "salesforce":
            out[system] = _salesforce(settings)
        else:  # pragma: no cover - the mapping loader only knows these two
            msg = f"no connector for system '{system}'"
            raise WritebackError(msg)
    return out


def _gainsight(settings: Settings) -> Connector:
    from connectors.gainsight.config import GainsightConfig
    from connectors.gainsight.connector import GainsightConnector

    gs = settings.gainsight
    if not gs.base_url or gs.access_key is None:
        msg = "gainsight writeback is enabled but GAINSIGHT_BASE_URL/GAINSIGHT_ACCESS_KEY are unset"
        raise WritebackError(msg)
    config = GainsightConfig(
        base_url=gs.base_url,
        access_key=gs.access_key.get_secret_value(),
        timeout_seconds=gs.timeout_seconds,
        max_attempts=gs.max_attempts,
        page_size=gs.page_size,
        calls_per_minute=gs.calls_per_minute,
        calls_per_day=gs.calls_per_day,
        budget_share=gs.budget_share,
        ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
    )
    return GainsightConnector(config, writes_enabled=True)


def _salesforce(settings: Settings) -> Connector:
    # Imported by name: the Salesforce connector lands in its own package (connectors/salesforce).
    try:
        config_mod: Any = importlib.import_module("connectors.salesforce.config")
        conn_mod: Any = importlib.import_module("connectors.salesforce")
    except ImportError:
        msg = "the Salesforce connector is not installed; cannot write back to Salesforce"
        raise WritebackError(msg) from None
    config = config_mod.SalesforceConfig.from_values(
        settings.salesforce.model_dump(),
        ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
    )
    connector: Connector = conn_mod.SalesforceConnector(config)
    return connector


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
        )
    finally:
        if own:
            for connector in conns.values():
                connector.close()
