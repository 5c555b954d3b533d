"""``POST /v1/privacy/forget``: the ``forget`` command over HTTP, for admin tokens only.

The erasure is :func:`sync_service.privacy.forget.forget` itself, recorded in
``privacy_erasures`` with the token's name as who asked and ``via = "api"``. Every call, refused
or not, is logged with the token's name and the outcome (never whom it named).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from canonical.errors import InputError, LockBusyError
from sync_service.api.auth import State, admin
from sync_service.api.models import Erasure, ErasureRequest, Problem
from sync_service.api.tokens import ApiToken
from sync_service.ops.runs import utcnow
from sync_service.privacy.forget import forget as erase

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no valid token"},
    403: {"model": Problem, "description": "not an admin token"},
    409: {"model": Problem, "description": "a sync is running; nothing was changed"},
    422: {"model": Problem, "description": "malformed body"},
    429: {"model": Problem, "description": "the token's rate limit"},
    503: {"model": Problem, "description": "no privacy key in this process"},
}


@router.post("/forget", response_model=Erasure, responses=_ERRORS)
def forget(
    body: ErasureRequest, token: Annotated[ApiToken, Depends(admin)], state: State
) -> Erasure:
    """Erase a person's personal data from the store and tombstone them (admin only).

    A person the store does not hold yet is tombstoned all the same (``found: false``): they
    never arrive. Refused with 409, nothing changed, while a sync or reconciliation runs.
    """
    # A plain ``def``: the erasure holds locks and runs one transaction, off the event loop.
    if state.privacy_key is None:
        log.warning("erasure via API by token '%s' refused: no privacy key", token.name)
        raise HTTPException(503, "erasure is not available here: the privacy key is not set")
    try:
        result = erase(
            state.engine,
            state.privacy_key(),
            contact=body.contact_id,
            email=body.email,
            reason=body.reason,
            requested_by=token.name,
            now=utcnow(),
            via="api",
        )
    except LockBusyError as exc:
        log.info("erasure via API by token '%s' refused: a sync is running", token.name)
        raise HTTPException(409, str(exc)) from None
    except InputError as exc:
        # Messages name the CLI's options and never echo the value.
        log.info("erasure via API by token '%s' refused: malformed subject", token.name)
        detail = str(exc).replace("--contact", "contact_id").replace("--email", "email")
        raise HTTPException(422, detail) from None
    log.info(
        "erasure %d via API by token '%s': %d row(s) changed",
        result.erasure_id,
        token.name,
        sum(result.tables.values()),
    )
    return Erasure.model_validate(result.as_dict())
