"""The one HTTP session of the connector: timeouts on every request, User-Agent, CA bundle.

simple-salesforce sets no timeout on its requests; a request without one can hang a service
for days. :class:`TimeoutAdapter` gives every request through the session a default timeout,
including the Bulk API calls simple-salesforce makes without a ``timeout`` argument.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from connectors.http import ServiceSession
from connectors.salesforce.config import SalesforceConfig


class TimeoutAdapter(HTTPAdapter):
    """An adapter that applies a default (connect, read) timeout to every request."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with the default timeout unless the caller gave one."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (min(self.timeout, 30.0), self.timeout)
        return super().send(request, **kwargs)


def build_session(config: SalesforceConfig) -> requests.Session:
    """Build the session once; the connector and simple-salesforce share it."""
    session = ServiceSession()
    adapter = TimeoutAdapter(config.timeout_seconds, pool_connections=4, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = config.user_agent
    if config.ca_bundle is not None:
        session.verify = str(config.ca_bundle)
    return session
