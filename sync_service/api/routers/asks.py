"""``POST /v1/asks/check`` and ``POST /v1/asks``: the guard at the point of ask."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from canonical.errors import InputError
from sync_service.api.auth import Caller, State, team_for
from sync_service.api.models import (
    AskCheck,
    AskCreate,
    AskLogged,
    Problem,
    Refused,
    Verdict,
)
from sync_service.evaluate.guard import AskTarget, Outcome
from sync_service.evaluate.guard import Caller as GuardCaller

router = APIRouter(prefix="/v1/asks", tags=["asks"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no valid token"},
    403: {"model": Problem, "description": "another team's ask, or a read-only token"},
    404: {"model": Problem, "description": "no such contact in the store"},
    422: {"model": Problem, "description": "malformed body, or an opportunity not in the store"},
    429: {"model": Problem, "description": "the token's rate limit"},
}


def _verdict(outcome: Outcome) -> dict[str, Any]:
    d = outcome.decision
    return {
        "allowed": d.allowed,
        "status": d.status,
        "reasons": d.reasons,
        "next_available": d.next_available,
        "contact_id": outcome.contact_id,
        "account_id": outcome.account_id,
        "caps": [c.as_dict() for c in d.caps],
    }


def _plain(out: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready (the check answers without a second validation of its own output)."""
    nxt = out["next_available"]
    return {**out, "next_available": nxt.isoformat() if nxt is not None else None}


def _not_found(body: AskCheck) -> HTTPException:
    # Never echo an email back (it would land in proxies' and clients' logs).
    what = f"contact {body.contact_id}" if body.contact_id else "contact with that email"
    return HTTPException(404, f"no {what} in the store (synced contacts only)")


@router.post("/check", response_model=Verdict, responses=_ERRORS)
async def check(body: AskCheck, token: Caller, state: State) -> JSONResponse:
    """May this contact be asked this now? Answers from the latest verdict plus every ask since.

    Changes nothing (the check is audited).
    """
    # Run in the event loop, not the thread pool: two index lookups that never wait on a lock
    # (WAL readers on SQLite, MVCC on PostgreSQL) cost less than the thread hop around them.
    team = team_for(token, body.team, logging=False)
    outcome = state.guard.check(
        GuardCaller(token.name, token.team), AskTarget(body.contact, body.ask_type, team)
    )
    if outcome is None:
        raise _not_found(body)
    return JSONResponse(_plain(_verdict(outcome)))


@router.post(
    "",
    status_code=201,
    response_model=AskLogged,
    responses={**_ERRORS, 409: {"model": Refused, "description": "not allowed (no override)"}},
)
def log_ask(body: AskCreate, token: Caller, state: State) -> Any:
    """Log an ask: 201 with its id when allowed (or overridden), 409 with the reasons when not.

    The ask is in the store at once and reaches the CRM as a request exactly once.
    """
    team = team_for(token, body.team, logging=True)
    try:
        outcome = state.guard.log(
            GuardCaller(token.name, token.team),
            AskTarget(body.contact, body.ask_type, team, body.opportunity_id),
            body.requested_by,
            body.override_reason,
        )
    except InputError as exc:  # an opportunity the store does not hold
        raise HTTPException(422, str(exc)) from exc
    if outcome is None:
        raise _not_found(body)
    out = _plain(_verdict(outcome))
    if outcome.ask_id is None:
        refused = Refused.model_validate(
            {**out, "detail": "not allowed: " + "; ".join(outcome.decision.reasons)}
        )
        return JSONResponse(refused.model_dump(mode="json"), status_code=409)
    return AskLogged.model_validate(
        {
            **out,
            "allowed": True,
            "id": outcome.ask_id,
            "override": outcome.overridden,
            "opportunity_id": outcome.opportunity_id,
        }
    )
