"""The one HTTP session per Gainsight tenant: auth header, User-Agent, TLS trust, timeouts.

Built once and injected into :class:`~connectors.gainsight.connector.GainsightConnector`, so
tests intercept every call in one place. The client passes an explicit timeout on every call;
the session also carries a default one, so a call made any other way cannot hang for ever.
"""

from __future__ import annotations

from typing import Any

import requests

from connectors.gainsight.config import GainsightConfig
from connectors.http import ServiceSession


class TimeoutSession(ServiceSession):
    """A session whose requests always carry a timeout."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request; a missing ``timeout`` becomes :attr:`default_timeout`."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def build_session(config: GainsightConfig) -> requests.Session:
    """A session that authenticates with ``accesskey`` and trusts ``config.ca_bundle``.

    Gainsight's documentation: "pass [the access key] as part of the request header
    'accesskey' for all of your API requests"; bodies are JSON.
    """
    session = TimeoutSession(config.timeout_seconds)
    session.headers.update(
        {
            "accesskey": config.access_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": config.user_agent,
        }
    )
    if config.ca_bundle:
        session.verify = config.ca_bundle
    return session
