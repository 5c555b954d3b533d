"""Build connectors from the service's settings; the only place that knows both.

What a connector may keep across jobs lives here, once per process: the Salesforce token (every
job of ``serve`` uses the same one; a 401 renews it for all) and, on disk in the var dir, the
describes of the mapped objects (see :mod:`connectors.salesforce.describe`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from canonical.errors import SettingsError
from canonical.model import System
from sync_service.mapping.loader import digest_files
from sync_service.ops.api_usage import calls_today
from sync_service.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from connectors.base import Connector
    from connectors.salesforce.auth import TokenCache


_tokens: list[TokenCache] = []
_tokens_lock = threading.Lock()


def salesforce_tokens() -> TokenCache:
    """The process's Salesforce tokens, shared by every connector the factory builds."""
    from connectors.salesforce.auth import TokenCache

    with _tokens_lock:
        if not _tokens:
            _tokens.append(TokenCache())
        return _tokens[0]


def mappings_digest(mappings_dir: Path) -> str:
    """A digest of the mapping files: a new digest makes kept describes stale."""
    try:
        return digest_files(sorted(Path(mappings_dir).glob("*.yaml")))
    except OSError:
        return ""


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
    var_dir: Path | None = None,
) -> Connector:
    """The connector for ``system`` (``salesforce`` or ``gainsight``).

    Args:
        settings: the service settings.
        system: ``salesforce`` or ``gainsight``.
        engine: the store; lets Gainsight's daily budget count the calls earlier runs made
            today (its limit is a fixed daily window, not per run).
        writes_enabled: allow writes to Gainsight (off unless its writeback is enabled).
        var_dir: the service's var dir: Salesforce describes are kept there across runs (for a
            day, or until the mappings or the API version change); None: for this run only.

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
                describe_cache_dir=var_dir,
                describe_cache_key=mappings_digest(settings.mappings_dir) if var_dir else "",
            ),
            tokens=salesforce_tokens(),
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
