"""``GET /v1/opportunities/{id}/references``: the advocates proposed on a deal.

The twin of ``sync-service match``: the same stored list, token-protected like /v1/advocates.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path

from sync_service.api.auth import Caller, State
from sync_service.api.models import Problem, Reference
from sync_service.match.stage import known_opportunity, suggestions_for

router = APIRouter(prefix="/v1/opportunities", tags=["opportunities"])


@router.get(
    "/{opportunity_id}/references",
    response_model=list[Reference],
    responses={401: {"model": Problem}, 404: {"model": Problem}},
)
def references(
    token: Caller,
    state: State,
    opportunity_id: str = Path(min_length=15, max_length=18, description="an opportunity id"),
) -> list[Reference]:
    """The suggested references of the deal, best first, with the terms that matched."""
    del token  # any valid token may read; the dependency authenticates
    with state.engine.connect() as conn:
        if not known_opportunity(conn, opportunity_id):
            raise HTTPException(404, f"no opportunity {opportunity_id} in the store")
        found = suggestions_for(conn, opportunity_id)
    return [Reference.model_validate(s) for s in found]
