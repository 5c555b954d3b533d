"""Logging for an unattended service: JSON lines for machines, readable lines for people.

``configure_logging(settings)`` installs one handler on the root logger. Its format is JSON
lines when stderr is not a terminal (a container, systemd, a file) and plain text on a terminal;
``settings.log_format`` (``auto``/``json``/``text``) overrides that.

Every record passes through :class:`RedactionFilter` before it is formatted, and the formatted
line is scrubbed once more, so a secret cannot slip out through the message, its ``%`` args, an
exception's text, a stack or an ``extra`` field. What is scrubbed is defined once, in
:mod:`canonical.redaction`; ``configure_logging`` registers every secret setting with it.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from canonical.redaction import (
    URL_PASSWORD,
    redact,
    redact_value,
    register_secret,
)

# Re-exported: callers of the logging setup (and its tests) have long found them here.
from canonical.redaction import clear_registered_secrets as clear_registered_secrets
from canonical.redaction import email_token as email_token
from canonical.redaction import mask_emails as mask_emails

if TYPE_CHECKING:
    from sync_service.settings import Settings

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", "_redacted"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


class RedactionFilter(logging.Filter):
    """Scrub a record's message, args, exception, stack and extras in place; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` with everything scrubbed; always keep it."""
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in _extras(record).items():
            setattr(record, key, redact_value(value))
        record._redacted = True
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, extras, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        data: dict[str, Any] = {
            "ts": _timestamp(record).replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in _extras(record).items():
            data.setdefault(key, redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = redact(record.exc_text)
        if record.stack_info:
            data["stack"] = redact(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-11-23T19:05:44Z INFO  logger: message key=value`` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one readable line (plus the traceback, if any)."""
        line = (
            f"{_timestamp(record)[:19]}Z {record.levelname:<7} {record.name}: {record.getMessage()}"
        )
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return redact(line)


def _secret_values(node: Any) -> Iterable[str]:
    if isinstance(node, SecretStr):
        yield node.get_secret_value()
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _secret_values(getattr(node, name))
    elif isinstance(node, dict):
        for value in node.values():
            yield from _secret_values(value)


def register_settings_secrets(settings: Settings) -> None:
    """Register every secret setting, and the password in ``database_url``, for scrubbing."""
    for value in _secret_values(settings):
        register_secret(value)
    match = URL_PASSWORD.search(settings.database_url)
    if match:
        register_secret(settings.database_url[match.end(1) : match.start(2)])


#: Third-party loggers that are chatty at INFO; they speak at WARNING unless DEBUG is asked.
_NOISY = ("apscheduler", "urllib3", "alembic")


def build_handler(stream: IO[str], fmt: str, level: str | int = "INFO") -> logging.Handler:
    """A stream handler with the redaction filter and the JSON or text formatter."""
    handler = logging.StreamHandler(stream)
    handler.setLevel(level)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._sync_service = True  # type: ignore[attr-defined]  # ours, to replace on reconfigure
    return handler


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to stderr (or ``stream``), redacted, in the configured format.

    Safe to call again: the handler it installed before is replaced, others are left alone.

    Returns:
        The installed handler.
    """
    stream = stream or sys.stderr
    fmt = settings.log_format
    if fmt == "auto":
        isatty = getattr(stream, "isatty", None)
        fmt = "text" if isatty is not None and isatty() else "json"
    register_settings_secrets(settings)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_sync_service", False)]:
        root.removeHandler(old)
        old.close()
    handler = build_handler(stream, fmt, settings.log_level)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(
            logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
        )
    return handler
