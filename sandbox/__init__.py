"""A local Salesforce org and Gainsight tenant speaking the real wire protocols over HTTPS.

``from sandbox import Sandbox``; see ``sandbox.py`` for the API, ``salesforce/`` (auth,
REST, query, Bulk 2.0 and the route table) and ``gainsight.py`` for what each side serves,
``faults.py`` for fault injection and ``seed/`` (with the word lists in ``data/``) for the data.
"""

from __future__ import annotations

from sandbox.faults import Faults
from sandbox.sandbox import Sandbox

__all__ = ["Faults", "Sandbox"]
