"""The tombstones' secret key and the keyed hash (HMAC-SHA256) of a person's keys.

A tombstone stores ``HMAC-SHA256(key, "<kind>:<normalised value>")`` (an id's 15-character
Salesforce head, see :func:`id_key`; an e-mail trimmed and lower-cased), never the value: without
the key nobody can test a guessed e-mail against the table (a plain hash of an e-mail is
reversed by hashing a list of e-mails). The key comes from ``SYNC_PRIVACY_KEY`` (or
``SYNC_PRIVACY_KEY_FILE``); without one, a random key is created on first use in
``privacy.key_file`` (default ``privacy.key`` beside a SQLite store, else ``var/``), readable by
its owner only. Replicas sharing a PostgreSQL store must share the key: set the variable. A
lost key makes existing tombstones unmatchable, so back it up with the store.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from canonical.errors import SettingsError
from canonical.sfid import to18
from sync_service.settings import PrivacySettings

#: Bytes of a generated key.
KEY_BYTES = 32
#: A configured key shorter than this is refused (a short key is a guessable key).
MIN_KEY_CHARS = 16


def normalise_email(value: str | None) -> str | None:
    """``value`` trimmed and lower-cased, or None when it holds no address."""
    if value is None:
        return None
    email = value.strip().lower()
    return email if "@" in email else None


def normalise_id(value: str | None) -> str | None:
    """A CRM id in one form: Salesforce ids as 18 characters, others trimmed; None if empty."""
    if value is None:
        return None
    text = str(value).strip()
    return to18(text) if text else None


def id_key(value: str | None) -> str | None:
    """What a tombstone hashes of an id: a Salesforce id's 15-character head, others trimmed.

    The 15-character id is the record's case-sensitive identity and the 18-character form only
    appends a checksum of it, so both forms hash alike without computing the checksum per row.
    """
    if value is None:
        return None
    text = str(value).strip()
    if len(text) in (15, 18) and text.isascii() and text.isalnum():
        return text[:15]
    return text or None


def load_key(settings: PrivacySettings, var_dir: Path) -> bytes:
    """The HMAC key: the configured one, else the key file (created 0600 on first use).

    Raises:
        SettingsError: the configured key is too short, or the key file cannot be read or made.
    """
    if settings.key is not None:
        key = settings.key.get_secret_value()
        if len(key) < MIN_KEY_CHARS:
            msg = (
                f"SYNC_PRIVACY_KEY is shorter than {MIN_KEY_CHARS} characters; "
                "use a long random value (e.g. `openssl rand -hex 32`)"
            )
            raise SettingsError(msg)
        return key.encode("utf-8")
    path = settings.key_file or var_dir / "privacy.key"
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return _create_key(path)
    except (OSError, ValueError) as exc:
        msg = f"cannot read the privacy key file '{path}' ({exc}); restore it from the backup"
        raise SettingsError(msg) from None


def _create_key(path: Path) -> bytes:
    key = secrets.token_bytes(KEY_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once cannot each write a different key; 0600 from
        # the first byte, not chmod after the fact.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except OSError as exc:
        msg = f"cannot create the privacy key file '{path}' ({exc.strerror}); set SYNC_PRIVACY_KEY"
        raise SettingsError(msg) from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    return key


class KeyedHasher:
    """Keyed hashes of ids and e-mails, as the tombstones store them."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, kind: str, value: str) -> str:
        """HMAC-SHA256 of ``"<kind>:<value>"`` as hex (``value`` already normalised)."""
        # hmac.digest: the one-shot C path (OpenSSL), several times faster than hmac.new per
        # call, which matters for the ingest's per-row checks.
        return hmac.digest(self._key, f"{kind}:{value}".encode(), "sha256").hex()

    def of_id(self, value: str | None) -> str | None:
        """The digest of a CRM id (15/18 forms alike), or None for no id."""
        key = id_key(value)
        return self.digest("id", key) if key else None

    def of_email(self, value: str | None) -> str | None:
        """The digest of an e-mail (case and surrounding spaces aside), or None."""
        norm = normalise_email(value)
        return self.digest("email", norm) if norm else None
