"""The redaction patterns, in one place: secrets and contact emails never reach a log line.

What is scrubbed by :func:`redact`:

- credentials by shape: ``Bearer``/``Basic`` tokens, JWTs, Salesforce session ids, PEM private
  keys, passwords in URLs (``scheme://user:pw@host``);
- credentials by name: any ``key=value``, ``"key": "value"``, ``Header: value`` or
  ``<key>value</key>`` whose key names a secret (password, access_token, client_secret,
  sessionId, Authorization, accesskey, ...);
- known secret values registered with :func:`register_secret`, verbatim and URL-encoded;
- contact emails, replaced by a short stable hash (``<email:1a2b3c>``) so lines about the same
  person can still be correlated without naming them.

CRM messages that go into errors (which may be shown to people and logged) pass through
:func:`safe_message`: emails become ``<email>``, the text one bounded line.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

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
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(@)", re.IGNORECASE)
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")

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
    return EMAIL.sub(lambda m: email_token(m.group(0)), text)


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
    text = URL_PASSWORD.sub(rf"\1{REDACTED}\2", text)
    text = _KEY_VALUE.sub(_key_value, text)
    text = _AUTH_SCHEME.sub(rf"\1 {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _SF_SESSION.sub(REDACTED, text)
    return EMAIL.sub(lambda m: email_token(m.group(0)), text)


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


#: What an email address becomes in a CRM message kept in an error.
EMAIL_PLACEHOLDER = "<email>"


def hide_emails(text: str) -> str:
    """``text`` with every email address replaced by :data:`EMAIL_PLACEHOLDER`."""
    return EMAIL.sub(EMAIL_PLACEHOLDER, text)


def safe_message(text: object, limit: int) -> str:
    """A CRM message fit for an error or a log line: emails hidden, one line, ``limit`` long.

    Whitespace runs (newlines included) become one space; a longer text is cut with ``…``.
    """
    s = hide_emails(" ".join(str(text or "").split()))
    return s if len(s) <= limit else s[: limit - 1] + "…"
