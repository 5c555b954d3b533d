"""Who is calling: bearer tokens, roles, team scope and the rate limit, as FastAPI dependencies.

Every ``/v1`` endpoint needs a valid token (401 without one); the rate limit is per token (429
with ``Retry-After``). A team token acts only for its own team (403 otherwise); a viewer token
reads but never logs. ``/metrics`` and ``/readyz`` need the ops token when one is set.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sync_service.api.ratelimit import retry_after
from sync_service.api.state import ApiState
from sync_service.api.tokens import ApiToken

bearer = HTTPBearer(auto_error=False, description="an API token from `sync-service api-token`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


# The dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its
# thread pool, a thread hop per dependency per request, which cost more than the work here (an
# in-memory token cache and bucket; a store lookup only on a cache miss).


async def state_of(request: Request) -> ApiState:
    """The app's shared state."""
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(state_of)]


async def caller(creds: Credentials, state: State) -> ApiToken:
    """The calling token; 401 without a valid one, 429 past its rate limit."""
    if creds is None or not creds.credentials:
        raise HTTPException(
            401,
            "missing API token: send 'Authorization: Bearer <token>' "
            "(create one with sync-service api-token create)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = state.tokens.lookup(creds.credentials)
    if token is None:
        raise HTTPException(
            401, "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"}
        )
    wait = state.limiter.take(token.name)
    if wait > 0:
        raise HTTPException(
            429,
            f"rate limit of token '{token.name}' reached; retry in {retry_after(wait)} s",
            headers={"Retry-After": retry_after(wait)},
        )
    return token


Caller = Annotated[ApiToken, Depends(caller)]


async def admin(token: Caller) -> ApiToken:
    """An admin token; 403 for the others."""
    if token.role != "admin":
        raise HTTPException(403, f"token '{token.name}' is not an admin token")
    return token


def team_for(token: ApiToken, team: str | None, *, logging: bool) -> str | None:
    """The team an ask is made for, checked against the token.

    Raises:
        HTTPException: 403 for another team's ask or a viewer logging; 422 for an admin
            logging without naming the team.
    """
    if logging and token.role == "viewer":
        raise HTTPException(403, f"token '{token.name}' is read-only (viewer); it cannot log asks")
    if token.role == "team":
        if team is not None and team.lower() != (token.team or "").lower():
            raise HTTPException(
                403, f"token '{token.name}' acts for team '{token.team}', not '{team}'"
            )
        return token.team
    if logging and not team:
        raise HTTPException(422, "team is required: name the team the ask is made for")
    return team


async def ops_guard(request: Request, creds: Credentials, state: State) -> None:
    """Require the ops token on ``/metrics`` and ``/readyz`` when one is configured."""
    if not state.ops_token:
        return
    given = creds.credentials if creds is not None else ""
    if not hmac.compare_digest(given.encode(), state.ops_token.encode()):
        raise HTTPException(
            401,
            f"{request.url.path} needs the ops token: 'Authorization: Bearer $SYNC_OPS_TOKEN'",
            headers={"WWW-Authenticate": "Bearer"},
        )
