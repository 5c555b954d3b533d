"""The one kind of HTTP session every connector uses: default timeouts, User-Agent, CA bundle.

Each connector builds one session per system, once, and injects it (into simple-salesforce, or
the Gainsight client), so tests intercept every call in one place. :func:`timeout_session`
builds it; the connector adds its own headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

#: Connect timeouts longer than this only delay the failure of an unreachable host.
MAX_CONNECT_TIMEOUT = 30.0


class ServiceSession(requests.Session):
    """A session whose own ``verify`` wins over the environment.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override ``session.verify`` for every
    request that does not pass ``verify`` itself (psf/requests#3829), and simple-salesforce never
    does. A CA bundle set on the session on purpose (a private CA, the sandbox) must hold; when
    none was set, the environment still applies, as do proxy variables.
    """

    def merge_environment_settings(  # type: ignore[override]
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> Any:
        """Merge as requests does, then restore an explicitly configured ``verify``."""
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            merged["verify"] = self.verify
        return merged


class TimeoutAdapter(HTTPAdapter):
    """An adapter that applies a default (connect, read) timeout to every request.

    simple-salesforce sets no timeout on its requests (its Bulk API calls included), and a
    request without one can hang a service for days.
    """

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send with the default timeout unless the caller gave one."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (min(self.timeout, MAX_CONNECT_TIMEOUT), self.timeout)
        return super().send(request, **kwargs)


def timeout_session(
    timeout: float,
    *,
    user_agent: str,
    ca_bundle: str | Path | None = None,
    headers: Mapping[str, str] | None = None,
) -> ServiceSession:
    """A session whose every request carries a timeout, the User-Agent and ``headers``.

    Args:
        timeout: the read timeout of a request that gives none (the connect timeout is at
            most :data:`MAX_CONNECT_TIMEOUT`).
        user_agent: sent on every request, so the CRM's admins can tell our traffic apart.
        ca_bundle: a PEM file for a private CA; None keeps the default trust (and the
            environment's ``REQUESTS_CA_BUNDLE``).
        headers: more headers for every request (auth, content type).
    """
    session = ServiceSession()
    adapter = TimeoutAdapter(timeout, pool_connections=4, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    session.headers.update(headers or {})
    if ca_bundle:
        session.verify = str(ca_bundle)
    return session
