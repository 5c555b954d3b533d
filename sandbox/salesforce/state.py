"""What the auth, REST and Bulk handlers share: the org, the tokens, cursors and jobs.

Also the error shapes every handler answers with: Salesforce's JSON error list
(``[{"message": ..., "errorCode": ...}]``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.faults import SALESFORCE, ApiCounter, Faults
from sandbox.http import Response, json_response
from sandbox.org import Org, RecordError
from sandbox.results import ResultSet
from sandbox.schema import ObjectDef

API_VERSIONS = ("58.0", "59.0", "60.0", "61.0", "62.0", "63.0", "64.0", "65.0")
ORG_ID = "00D5g000004SbXQEA0"
USER_ID = "0055g00000AbCdEQAV"
#: Open REST query cursors and Bulk query job results kept (older ones are dropped).
MAX_CURSORS = 20


def errors(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Salesforce's error list with one error."""
    return json_response(status, [{"message": message, "errorCode": code}], headers)


def not_found() -> Response:
    """The answer for a path (or a record, job or cursor in it) that does not exist."""
    return errors(404, "NOT_FOUND", "The requested resource does not exist")


def bad_json() -> Response:
    """The answer for a body that is not JSON."""
    return errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")


def lock_error() -> RecordError:
    """A record lost to a concurrent transaction (injected by ``Faults.lock_row``)."""
    return RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])


@dataclass
class Credentials:
    """What the connected app and the integration user are."""

    client_id: str
    client_secret: str
    username: str
    password: str
    refresh_token: str
    access_token: str
    jwt_public_key: bytes


@dataclass
class Cursor:
    """A REST query cursor: its result snapshot and the endpoint that made it."""

    result: ResultSet
    version: str
    endpoint: str


@dataclass
class Job:
    """A Bulk API 2.0 job."""

    info: dict[str, Any]
    result: ResultSet | None = None
    uploads: list[bytes] = field(default_factory=list)
    success: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


class SalesforceState:
    """The org and the server-side state of the Salesforce side, behind one lock."""

    def __init__(
        self,
        org: Org,
        faults: Faults,
        counter: ApiCounter,
        creds: Credentials,
        base_url: Callable[[], str],
    ) -> None:
        self.org = org
        self.store = org.store
        self.faults = faults
        self.counter = counter
        self.creds = creds
        self.base_url = base_url
        self.lock = threading.Lock()
        # token -> (issued monotonic time, faults.token_epoch at issue)
        self.tokens: dict[str, tuple[float, int]] = {creds.access_token: (time.monotonic(), 0)}
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.jobs: dict[str, Job] = {}
        self._n = 0
        self.api_used = 0

    def next_number(self) -> int:
        """A number for the next cursor or job id."""
        with self.lock:
            self._n += 1
            return self._n

    @property
    def objects(self) -> dict[str, ObjectDef]:
        """The Salesforce schemas."""
        return self.store.schemas[SALESFORCE]

    def object_named(self, name: str) -> ObjectDef | None:
        """The object called ``name`` (any case), if there is one."""
        for obj in self.objects.values():
            if obj.name.lower() == name.lower():
                return obj
        return None

    def limit_header(self) -> dict[str, str]:
        """The ``Sforce-Limit-Info`` header every API answer carries."""
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.faults.api_limit}"}
