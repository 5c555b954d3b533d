"""Logging for an unattended service: JSON lines for machines, readable lines for people.

``configure_logging(settings)`` installs one handler on the root logger. Its format is JSON
lines when stderr is not a terminal (a container, systemd, a file) and plain text on a terminal;
``settings.log_format`` (``auto``/``json``/``text``) overrides that.

Every record passes through :class:`RedactionFilter` before it is formatted, and the formatted
line is scrubbed once more, so a secret cannot slip out through the message, its ``%`` args, an
exception's text, a stack or an ``extra`` field. What is scrubbed:

- credentials by shape: ``Bearer``/``Basic`` tokens, JWTs, Salesforce session ids, PEM private
  keys, passwords in URLs (``scheme://user:pw@host``);
- credentials by name: any ``key=value``, ``"key": "value"``, ``Header: value`` or
  ``<key>value</key>`` whose key names a secret (password, access_token, client_secret,
  sessionId, Authorization, accesskey, ...);
- known secret values registered with :func:`register_secret` (``configure_logging`` registers
  every secret setting), verbatim and URL-encoded;
- contact emails, replaced by a short stable hash (``<email:1a2b3c>``) so lines about the same
  person can still be correlated without naming them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:
    from sync_service.settings import Settings

REDACTED = "[REDACTED]"

#: Key names whose values are secrets, wherever they appear (query strings, JSON, headers, XML).
_SENSITIVE_NAMES = (
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|security[_-]?token|bearer[_-]?token"
    r"|client[_-]?secret|secret|password|passwd|pwd|passphrase"
    r"|api[_-]?key|access[_-]?key|private[_-]?key|session[_-]?id|sid"
    r"|authorization|assertion|webhook[_-]?url|token"
)

# Order matters: whole blocks first (keys), then key/value pairs (their value may contain a
# space after "Bearer"), then shapes that need no key.
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_XML_SECRET = re.compile(
    rf"(<(?:[\w-]+:)?[\w-]*(?:{_SENSITIVE_NAMES})[\w-]*>)[^<]*(</)",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(
    rf"""(?P<key>\\?["']?\b(?:[\w.-]*[_.-])?(?:{_SENSITIVE_NAMES})[\w-]*\\?["']?\s*[:=]\s*)
         (?:
            (?P<bs>\\?)(?P<q>["'])(?P<qval>.*?)(?P=bs)(?P=q)     # quoted, maybe escaped quotes
          | (?!\[REDACTED)
            (?P<val>(?:(?:Bearer|Basic|OAuth|Token|Digest)\s+)?[^\s"'&,;}}<>)\]\\]+)
         )""",
    re.IGNORECASE | re.VERBOSE,
)
_AUTH_SCHEME = re.compile(
    r"\b(Bearer|Basic|OAuth|Digest)\s+[A-Za-z0-9._~+/=!:-]{6,}", re.IGNORECASE
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
#: Salesforce session ids / access tokens: org id, '!', then the opaque part.
_SF_SESSION = re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]{10,}")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(@)", re.IGNORECASE)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")

_known_lock = threading.Lock()
_known_values: set[str] = set()
_known_pattern: re.Pattern[str] | None = None

#: Shorter values would scrub ordinary words; such a secret is too weak to guard anyway.
_MIN_SECRET_LEN = 6


def email_token(email: str) -> str:
    """A short, stable stand-in for an email address: ``<email:1a2b3c>``."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:6]
    return f"<email:{digest}>"


def mask_emails(text: str) -> str:
    """Replace every email address in ``text`` with its :func:`email_token`."""
    return _EMAIL.sub(lambda m: email_token(m.group(0)), text)


def register_secret(value: str | SecretStr | None) -> None:
    """Scrub ``value`` verbatim (and URL-encoded) from every later log line."""
    global _known_pattern
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _known_lock:
        before = len(_known_values)
        _known_values.update({value, quote(value, safe=""), quote_plus(value)})
        if len(_known_values) != before:
            ordered = sorted(_known_values, key=len, reverse=True)
            _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def clear_registered_secrets() -> None:
    """Forget every registered secret (tests)."""
    global _known_pattern
    with _known_lock:
        _known_values.clear()
        _known_pattern = None


def _key_value(m: re.Match[str]) -> str:
    if m.group("q") is not None:
        quote_ = m.group("bs") + m.group("q")
        return f"{m.group('key')}{quote_}{REDACTED}{quote_}"
    return f"{m.group('key')}{REDACTED}"


def redact(text: str) -> str:
    """``text`` with every secret and email scrubbed (see the module docstring)."""
    if not text:
        return text
    known = _known_pattern
    if known is not None:
        text = known.sub(REDACTED, text)
    text = _PEM.sub("[REDACTED PRIVATE KEY]", text)
    text = _XML_SECRET.sub(rf"\1{REDACTED}\2", text)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}\2", text)
    text = _KEY_VALUE.sub(_key_value, text)
    text = _AUTH_SCHEME.sub(rf"\1 {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _SF_SESSION.sub(REDACTED, text)
    return _EMAIL.sub(lambda m: email_token(m.group(0)), text)


def redact_value(value: Any) -> Any:
    """Redact strings inside ``value`` (nested dicts, lists and tuples too)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


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
    match = _URL_PASSWORD.search(settings.database_url)
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
