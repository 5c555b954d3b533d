"""The one HTTP session per Gainsight tenant: auth header, User-Agent, TLS trust, timeouts.

Built once (see :mod:`connectors.http`) and injected into
:class:`~connectors.gainsight.connector.GainsightConnector`, so tests intercept every call in
one place. The client passes an explicit timeout on every call; the session also carries a
default one, so a call made any other way cannot hang for ever.
"""

from __future__ import annotations

import requests

from connectors.gainsight.config import GainsightConfig
from connectors.http import timeout_session


def build_session(config: GainsightConfig) -> requests.Session:
    """A session that authenticates with ``accesskey`` and trusts ``config.ca_bundle``.

    Gainsight's documentation: "pass [the access key] as part of the request header
    'accesskey' for all of your API requests"; bodies are JSON.
    """
    return timeout_session(
        config.timeout_seconds,
        user_agent=config.user_agent,
        ca_bundle=config.ca_bundle,
        headers={
            "accesskey": config.access_key.get_secret_value(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
