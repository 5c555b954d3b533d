"""The Salesforce connector: auth, REST and Bulk API 2.0 reads, writes, limits, retries."""

from __future__ import annotations

from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.describe import FieldInfo, ObjectInfo
from connectors.salesforce.session import build_session
from connectors.salesforce.streams import SalesforceStream

__all__ = [
    "FieldInfo",
    "ObjectInfo",
    "SalesforceConfig",
    "SalesforceConnector",
    "SalesforceStream",
    "build_session",
]
