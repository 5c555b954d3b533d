"""The Salesforce side of the sandbox.

The OAuth token endpoint (``auth.py``), REST (``rest.py``: describe, sObjects, Collections,
limits; ``query.py``: SOQL and its cursors) and Bulk API 2.0 (``bulk.py``: query and ingest
jobs), with Salesforce's headers and error lists. ``app.py`` holds the HTTP handler and its
route table; ``state.py`` what the handlers share.

Every authenticated call is counted against a daily allocation reported in
``Sforce-Limit-Info: api-usage=N/M``; beyond it calls answer 403 ``REQUEST_LIMIT_EXCEEDED``.
Unknown or expired tokens answer 401 ``INVALID_SESSION_ID``.
"""

from __future__ import annotations

from sandbox.salesforce.app import SalesforceApp
from sandbox.salesforce.state import Credentials

__all__ = ["Credentials", "SalesforceApp"]
