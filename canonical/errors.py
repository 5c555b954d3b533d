"""One exception tree for the whole service, branched by what the caller should do.

::

    ServiceError                      base; ``exit_code`` says how the CLI ends
    ├── ConfigError                   bad settings, mapping or rules: fix the file (exit 2)
    │   ├── SettingsError
    │   ├── MappingError
    │   ├── PolicyError
    │   └── MatchingError             config/matching.yaml (reference matching rules)
    ├── ConnectorError                a CRM call failed (``system``, ``status``, ``code``)
    │   ├── RetriableError            try again later: 5xx, timeouts, connection drops
    │   │   └── RateLimitedError      429 / concurrent REQUEST_LIMIT_EXCEEDED (``retry_after``)
    │   ├── AuthError                 credentials or permissions: fix the connected app / user
    │   ├── BudgetExhaustedError      the API budget share is spent: stop cleanly, run is partial
    │   └── FatalApiError             the CRM rejected the request itself (INVALID_FIELD, ...)
    ├── RecordError                   one bad record: quarantine it, the batch goes on
    ├── WritebackError                the writeback cannot proceed (held, misconfigured)
    ├── InputError                    a bad argument (command line or API request): fix it (exit 2)
    └── StoreError                    the local store is unreachable or inconsistent
        └── LockBusyError             another runner holds the job's lock

Messages say what to do next. They never carry a token, a password or a contact email.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class ConfigError(ServiceError):
    """A settings, mapping or rules file (or environment variable) is invalid.

    Attributes:
        problems: every problem found, each already formatted as one line
            (``file:line:col: key: what is wrong``).
    """

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.problems = problems or [message]


class SettingsError(ConfigError):
    """``config/settings.yaml`` or an environment variable is invalid."""


class MappingError(ConfigError):
    """A ``mappings/*.yaml`` file is invalid or does not match the CRM schema."""


class PolicyError(ConfigError):
    """``config/rules.yaml`` is invalid."""


class MatchingError(ConfigError):
    """``config/matching.yaml`` (the reference matching rules) is invalid."""


class ConnectorError(ServiceError):
    """A call to Salesforce or Gainsight failed.

    Attributes:
        system: ``salesforce`` or ``gainsight``.
        status: the HTTP status, when there was a response.
        code: the CRM's own error code (``INVALID_FIELD``, ``REQUEST_LIMIT_EXCEEDED``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        status: int | None = None,
        code: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.system = system
        self.status = status
        self.code = code


class RetriableError(ConnectorError):
    """A transient failure: the same call may succeed later."""


class RateLimitedError(RetriableError):
    """The CRM asked us to slow down; ``retry_after`` is in seconds when it said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AuthError(ConnectorError):
    """Authentication or authorisation failed; retrying will not help."""

    exit_code = 2


class BudgetExhaustedError(ConnectorError):
    """The configured share of the API budget is used: stop cleanly and resume later."""


class FatalApiError(ConnectorError):
    """The CRM rejected the request as such; fix the configuration, do not retry."""


class RecordError(ServiceError):
    """One record cannot be used; it goes to quarantine with ``reason``.

    Attributes:
        record_id: the record's source id, when it has one.
        reason: why it was rejected, one line.
    """

    def __init__(self, reason: str, *, record_id: str | None = None, **context: Any) -> None:
        super().__init__(reason, **context)
        self.reason = reason
        self.record_id = record_id


class WritebackError(ServiceError):
    """The writeback cannot proceed as asked (held by a guard, or misconfigured)."""


class InputError(ServiceError):
    """A command-line argument or API request value is malformed: fix it and repeat."""

    exit_code = 2


class StoreError(ServiceError):
    """The local store is unreachable or not at the expected schema."""


class LockBusyError(StoreError):
    """Another runner holds this job's lock; this run is skipped, not failed."""
