"""``GET /v1/advocates/{id}``: a contact's or account's verdict and why (the twin of explain)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path

from sync_service.api.auth import Caller, State
from sync_service.api.models import Advocate, CapOut, Problem
from sync_service.evaluate.explain import explain_entity
from sync_service.evaluate.guard import AskTarget

router = APIRouter(prefix="/v1/advocates", tags=["advocates"])


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@router.get(
    "/{entity_id}",
    response_model=Advocate,
    responses={401: {"model": Problem}, 404: {"model": Problem}},
)
def advocate(
    token: Caller,
    state: State,
    entity_id: str = Path(min_length=15, max_length=18, description="a contact or account id"),
) -> Advocate:
    """The verdict, reasons, cap counts (recounted now) and the asks that counted."""
    guard = state.guard
    policy = guard.policy()
    report = explain_entity(state.engine, policy, entity_id, guard.now())
    if report is None:
        raise HTTPException(404, f"no contact or account {entity_id} in the store")
    kind = str(report.get("entity_type"))
    caps: list[CapOut] = []
    if kind == "contact":
        outcome = guard.decide(AskTarget(entity_id, "", token.team))
        if outcome is not None:
            caps = [CapOut.model_validate(c.as_dict()) for c in outcome.decision.caps]
        asks = guard.advocate_asks(entity_id, None)
    else:
        caps = [CapOut.model_validate(c.as_dict()) for c in guard.account_caps(entity_id)]
        asks = guard.advocate_asks(None, entity_id)
    stored = report.get("last_evaluation") or {}
    return Advocate(
        entity_type=kind,
        id=entity_id,
        status=stored.get("status") or report.get("status"),
        reason=stored.get("reason") or report.get("reason"),
        next_available=stored.get("next_available"),
        score=stored.get("score"),
        caps=caps,
        asks=asks,
        explain=_plain(report),
    )
