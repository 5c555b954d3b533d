"""Per-team API tokens: created once and shown once, stored as a SHA-256 hash, revocable.

A token is ``asg_`` followed by 32 random bytes (URL-safe base64). Its hash is all the store
keeps: SHA-256 is enough for a secret of 256 random bits (no password to guess), and it makes
the lookup an index search. Roles:

* ``admin``: everything, for any team;
* ``team``: checks and logs asks for its own team, reads advocates;
* ``viewer``: read only (checks, advocates, the program report); logs nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import ConfigError
from sync_service.store.models import api_tokens

Role = Literal["admin", "team", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "team", "viewer")
PREFIX = "asg_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: How long a token looked up stays trusted in memory: a revocation bites within this.
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class ApiToken:
    """A token's record (never the token itself)."""

    id: int
    name: str
    team: str | None
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    """The stored form of ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _row(r: sa.Row[tuple[object, ...]]) -> ApiToken:
    m = r._mapping
    return ApiToken(
        int(m["id"]),
        str(m["name"]),
        m["team"],  # type: ignore[arg-type]
        m["role"],  # type: ignore[arg-type]
        m["created_at"],  # type: ignore[arg-type]
        m["revoked_at"],  # type: ignore[arg-type]
    )


def create_token(
    engine: Engine, *, team: str | None, name: str | None, role: Role, now: datetime
) -> tuple[ApiToken, str]:
    """Create a token; returns its record and the token (shown once, never stored).

    Raises:
        ConfigError: a bad name or role, a team token without a team, or a name in use.
    """
    if role not in ROLES:
        msg = f"unknown role '{role}'; choose from {', '.join(ROLES)}"
        raise ConfigError(msg)
    if role == "team" and not team:
        msg = "a team token needs --team TEAM (or use --role admin or viewer)"
        raise ConfigError(msg)
    name = name or f"{(team or role).lower().replace(' ', '-')}-{secrets.token_hex(3)}"
    if not _NAME.match(name):
        msg = f"token name '{name}': use letters, digits, '.', '_' or '-' (64 at most)"
        raise ConfigError(msg)
    token = PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        taken = conn.execute(sa.select(api_tokens.c.id).where(api_tokens.c.name == name)).first()
        if taken is not None:
            msg = f"a token named '{name}' exists already; pick another --name or revoke it"
            raise ConfigError(msg)
        conn.execute(
            sa.insert(api_tokens).values(
                name=name, team=team, role=role, token_hash=hash_token(token), created_at=now
            )
        )
        row = conn.execute(sa.select(api_tokens).where(api_tokens.c.name == name)).one()
    return _row(row), token


def list_tokens(engine: Engine) -> list[ApiToken]:
    """Every token, revoked ones included, oldest first."""
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id))]


def revoke_token(engine: Engine, name: str, now: datetime) -> bool:
    """Revoke the token named ``name``; False when there is no such live token."""
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return bool(done.rowcount)


class TokenCache:
    """Looks tokens up by hash, remembering answers (hits and misses) for a few seconds."""

    def __init__(self, engine: Engine, ttl: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.ttl = ttl
        self._seen: dict[str, tuple[float, ApiToken | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, token: str) -> ApiToken | None:
        """The live token record for ``token``, or None."""
        digest = hash_token(token)
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(digest)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_tokens).where(
                    api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None)
                )
            ).first()
        found = _row(row) if row is not None else None
        with self._lock:
            if len(self._seen) > 10_000:  # misses with random tokens must not grow it forever
                self._seen.clear()
            self._seen[digest] = (now, found)
        return found
