"""Build connectors from the service's settings; the only place that knows both."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canonical.errors import SettingsError
from canonical.model import System
from sync_service.ops.api_usage import calls_today
from sync_service.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from connectors.base import Connector


def _ca_bundle(settings: Settings) -> str | None:
    return str(settings.ca_bundle) if settings.ca_bundle else None


def source_enabled(settings: Settings, system: str) -> bool:
    """Whether ``system`` is switched on and has somewhere to connect to."""
    if system == System.SALESFORCE:
        return settings.salesforce.enabled
    if system == System.GAINSIGHT:
        return settings.gainsight.enabled and settings.gainsight.base_url is not None
    return False


def build_connector(
    settings: Settings,
    system: str,
    *,
    engine: Engine | None = None,
    writes_enabled: bool = False,
) -> Connector:
    """The connector for ``system`` (``salesforce`` or ``gainsight``).

    Args:
        settings: the service settings.
        system: ``salesforce`` or ``gainsight``.
        engine: the store; lets Gainsight's daily budget count the calls earlier runs made
            today (its limit is a fixed daily window, not per run).
        writes_enabled: allow writes to Gainsight (off unless its writeback is enabled).

    Raises:
        SettingsError: when the system is disabled or not configured.
    """
    if not source_enabled(settings, system):
        what = (
            "GAINSIGHT_BASE_URL and GAINSIGHT_ACCESS_KEY"
            if system == System.GAINSIGHT
            else "salesforce.enabled: true"
        )
        msg = f"{system} is disabled or not configured; set {what}"
        raise SettingsError(msg)
    if system == System.SALESFORCE:
        from connectors.salesforce.config import SalesforceConfig
        from connectors.salesforce.connector import SalesforceConnector

        return SalesforceConnector(
            SalesforceConfig.from_options(
                settings.salesforce,
                ca_bundle=_ca_bundle(settings),
                batch_size=settings.sync.batch_size,
            )
        )
    from connectors.gainsight.config import GainsightConfig
    from connectors.gainsight.connector import GainsightConnector

    gs = settings.gainsight
    if gs.base_url is None or gs.access_key is None:  # settings validation prevents this
        msg = "gainsight needs GAINSIGHT_BASE_URL and GAINSIGHT_ACCESS_KEY"
        raise SettingsError(msg)
    return GainsightConnector(
        GainsightConfig.from_options(
            gs,
            ca_bundle=_ca_bundle(settings),
            calls_today=calls_today(engine, System.GAINSIGHT) if engine is not None else 0,
        ),
        writes_enabled=writes_enabled,
    )
