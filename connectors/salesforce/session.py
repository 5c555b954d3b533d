"""The one HTTP session of the Salesforce connector (see :mod:`connectors.http`).

simple-salesforce sets no timeout on its requests; the session gives every request through it
a default one, including the Bulk API calls simple-salesforce makes without ``timeout``.
"""

from __future__ import annotations

import requests

from connectors.http import timeout_session
from connectors.salesforce.config import SalesforceConfig


def build_session(config: SalesforceConfig) -> requests.Session:
    """Build the session once; the connector and simple-salesforce share it."""
    return timeout_session(
        config.timeout_seconds, user_agent=config.user_agent, ca_bundle=config.ca_bundle
    )
