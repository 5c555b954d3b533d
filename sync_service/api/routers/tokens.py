"""``GET /v1/me`` (the calling token) and ``GET /v1/tokens`` (admin: every token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from sync_service.api.auth import Caller, State, admin
from sync_service.api.models import Me, TokenOut
from sync_service.api.tokens import ApiToken, list_tokens

router = APIRouter(prefix="/v1", tags=["tokens"])


@router.get("/me", response_model=Me)
def me(token: Caller) -> Me:
    """The calling token's name, team and role."""
    return Me(name=token.name, team=token.team, role=token.role)


@router.get("/tokens", response_model=list[TokenOut])
def tokens(_admin: Annotated[ApiToken, Depends(admin)], state: State) -> list[TokenOut]:
    """Every token (admin only); the tokens themselves are never stored, so never shown."""
    return [
        TokenOut(
            name=t.name,
            team=t.team,
            role=t.role,
            created_at=t.created_at.isoformat(),
            revoked=t.revoked_at is not None,
        )
        for t in list_tokens(state.engine)
    ]
