"""What every connector's HTTP session shares."""

from __future__ import annotations

from typing import Any

import requests


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
