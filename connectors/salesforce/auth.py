"""Getting an access token from the org's OAuth 2.0 token endpoint.

Flows, all against ``{login_url}/services/oauth2/token`` (so My Domain and sandbox orgs work):

* ``jwt`` — JWT bearer (recommended for unattended services): an RS256 assertion signed with the
  connected app's private key; ``aud`` is the login host, ``exp`` a few minutes away.
* ``client_credentials`` — the connected app's run-as user (needs My Domain).
* ``password`` — OAuth username-password grant (legacy: Salesforce is retiring it; we warn).
* ``token`` — a given access token and instance URL; it cannot be renewed.

``auto`` picks the first flow the credentials allow, renewable flows first.

A :class:`TokenCache` shared by every connector of a process (the service's factory holds one)
lets the jobs of ``serve`` use one token: the first connector logs in, the others reuse its
token, and the one that meets a 401 ``INVALID_SESSION_ID`` renews it once for all of them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import requests
from pydantic import SecretStr

from canonical.errors import AuthError, ConfigError
from connectors.config import reveal
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.errors import SYSTEM, from_response, redact

log = logging.getLogger(__name__)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Lifetime of a JWT assertion: Salesforce wants it short (at most a few minutes).
JWT_LIFETIME_SECONDS = 180

_NEEDS: dict[str, tuple[str, ...]] = {
    "jwt": ("client_id", "username", "private_key_file"),
    "client_credentials": ("client_id", "client_secret"),
    "password": ("client_id", "client_secret", "username", "password"),
    "token": ("access_token", "instance_url"),
}

#: What the token endpoint's ``error`` codes mean for an admin.
_OAUTH_ACTIONS: dict[str, str] = {
    "invalid_client_id": "check SALESFORCE_CLIENT_ID (the connected app's consumer key)",
    "invalid_client": "check SALESFORCE_CLIENT_SECRET and that the connected app allows this flow",
    "invalid_grant": (
        "check the username, that the user is pre-authorised for the connected app "
        "(profile or permission set), and the certificate or password"
    ),
    "unsupported_grant_type": "enable this OAuth flow on the connected app",
    "invalid_app_access": "pre-authorise the integration user for the connected app",
    "inactive_user": "the integration user is inactive: reactivate it",
}


@dataclass(frozen=True)
class Token:
    """An access token and the instance it is valid for."""

    access_token: str = field(repr=False)
    instance_url: str
    flow: str


def _given(value: object) -> bool:
    """Whether a credential is set: not None and not empty (secrets are checked unwrapped)."""
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value is not None and value != ""


def resolve_flow(config: SalesforceConfig) -> str:
    """The flow to use: the configured one, or for ``auto`` the first the credentials allow."""
    if config.auth_flow != "auto":
        missing = [n for n in _NEEDS[config.auth_flow] if not _given(getattr(config, n))]
        if missing:
            names = ", ".join("SALESFORCE_" + n.upper() for n in missing)
            msg = (
                f"Salesforce auth_flow '{config.auth_flow}' needs {names}; "
                "set them or choose another flow"
            )
            raise ConfigError(msg)
        return config.auth_flow
    for flow in ("jwt", "client_credentials", "password", "token"):
        if all(_given(getattr(config, n)) for n in _NEEDS[flow]):
            return flow
    msg = (
        "no usable Salesforce credentials: set SALESFORCE_CLIENT_ID, SALESFORCE_USERNAME and "
        "SALESFORCE_PRIVATE_KEY_FILE (JWT bearer), or SALESFORCE_CLIENT_ID and "
        "SALESFORCE_CLIENT_SECRET (client credentials), or SALESFORCE_ACCESS_TOKEN and "
        "SALESFORCE_INSTANCE_URL"
    )
    raise ConfigError(msg)


PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"


def audience(login_url: str) -> str:
    """The JWT ``aud`` for a login URL.

    Salesforce accepts only ``https://login.salesforce.com`` (production) or
    ``https://test.salesforce.com`` (sandboxes) as the audience, even when the token is posted
    to a My Domain host — the My Domain URL itself is refused ("audience is invalid"). Other hosts
    (an Experience Cloud site, a local emulator) are their own audience: scheme://host[:port].
    """
    parts = urlsplit(login_url)
    host = (parts.hostname or "").lower()
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return SANDBOX_AUDIENCE
    if host == "salesforce.com" or host.endswith(".salesforce.com"):
        return PRODUCTION_AUDIENCE
    return f"{parts.scheme}://{parts.netloc}"


class TokenCache:
    """Tokens shared by the connectors of one process, one per org and user (thread-safe)."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()
        #: Tokens fetched from the token endpoint through this cache (logins).
        self.logins = 0

    def get(self, key: str, fetch: Callable[[], Token]) -> Token:
        """The token kept for ``key``, else one fetched now (one login however many ask)."""
        with self._lock:
            token = self._tokens.get(key)
            if token is None:
                token = fetch()
                self._tokens[key] = token
                self.logins += 1
            return token

    def renew(self, key: str, stale: Token | None, fetch: Callable[[], Token]) -> Token:
        """A new token for ``key`` unless another connector already replaced ``stale``."""
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token == stale:
                token = fetch()
                self._tokens[key] = token
                self.logins += 1
            return token


def cache_key(config: SalesforceConfig, flow: str) -> str:
    """Which org, user, flow and credentials a token belongs to (hashed, never kept in clear).

    The credentials are part of it: a process given other credentials (a rotated secret, a
    wrong one) logs in with them rather than reuse a token the old ones obtained.
    """
    parts = (
        flow,
        config.login_url,
        config.instance_url or "",
        config.client_id or "",
        config.username or "",
        reveal(config.client_secret),
        reveal(config.password),
        reveal(config.security_token),
        reveal(config.access_token),
        str(config.private_key_file or ""),
    )
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


class Authenticator:
    """Fetches tokens with the configured flow over the connector's session."""

    def __init__(self, config: SalesforceConfig, session: requests.Session) -> None:
        self.config = config
        self.session = session
        self.flow = resolve_flow(config)
        self._warned = False

    @property
    def renewable(self) -> bool:
        """Whether a new token can be fetched (a given token cannot)."""
        return self.flow != "token"

    def fetch(self) -> Token:
        """Get a token; raises AuthError (bad credentials) or RetriableError (endpoint down)."""
        cfg = self.config
        if self.flow == "token":
            assert cfg.access_token is not None
            assert cfg.instance_url is not None
            return Token(reveal(cfg.access_token), cfg.instance_url.rstrip("/"), "token")
        if self.flow == "jwt":
            data = {"grant_type": JWT_GRANT, "assertion": self._assertion()}
        elif self.flow == "client_credentials":
            data = {
                "grant_type": "client_credentials",
                "client_id": cfg.client_id or "",
                "client_secret": reveal(cfg.client_secret),
            }
        else:
            if not self._warned:
                log.warning(
                    "Salesforce username-password login is being retired by Salesforce; "
                    "switch to the JWT bearer or client credentials flow"
                )
                self._warned = True
            data = {
                "grant_type": "password",
                "client_id": cfg.client_id or "",
                "client_secret": reveal(cfg.client_secret),
                "username": cfg.username or "",
                "password": reveal(cfg.password) + reveal(cfg.security_token),
            }
        return self._post(data)

    def _assertion(self) -> str:
        cfg = self.config
        assert cfg.private_key_file is not None
        path = Path(cfg.private_key_file)
        try:
            key = path.read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"cannot read SALESFORCE_PRIVATE_KEY_FILE '{path}': {exc.strerror}"
            raise ConfigError(msg) from exc
        now = int(time.time())
        claims = {
            "iss": cfg.client_id,
            "sub": cfg.username,
            "aud": audience(cfg.login_url),
            "exp": now + JWT_LIFETIME_SECONDS,
        }
        try:
            return jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            msg = f"SALESFORCE_PRIVATE_KEY_FILE '{path}' is not a usable RSA private key (PEM)"
            raise ConfigError(msg) from exc

    def _post(self, data: dict[str, str]) -> Token:
        response = self.session.post(
            self.config.token_url, data=data, headers={"Accept": "application/json"}
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise from_response(response, what=f"{self.flow} login")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            error = str(body.get("error", "")) if isinstance(body, dict) else ""
            description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
            action = _OAUTH_ACTIONS.get(error, "check the connected app and the credentials")
            msg = (
                f"Salesforce {self.flow} login failed ({error or response.status_code}: "
                f"{redact(description)}): {action}"
            )
            raise AuthError(msg, system=SYSTEM, status=response.status_code, code=error or None)
        token = body.get("access_token")
        instance_url = body.get("instance_url")
        if not token or not instance_url:
            msg = f"Salesforce {self.flow} login answered without access_token or instance_url"
            raise AuthError(msg, system=SYSTEM, status=response.status_code)
        log.info("Salesforce login (%s flow) succeeded for instance %s", self.flow, instance_url)
        return Token(str(token), str(instance_url).rstrip("/"), self.flow)
