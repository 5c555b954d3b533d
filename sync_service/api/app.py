"""The HTTP app: ``create_app(state)`` builds it; ``serve`` runs it under uvicorn.

Routers by area: operations (``/healthz``, ``/readyz``, ``/metrics``), asks (``/v1/asks``),
advocates (``/v1/advocates``), suggested references (``/v1/opportunities/{id}/references``),
tokens (``/v1/me``, ``/v1/tokens``), privacy
(``/v1/privacy/forget``, admin only) and, when the state has one, the report (``/report``).
Errors are one line of JSON, ``{"detail": "..."}``, whatever raised them; OpenAPI at
``/openapi.json``, docs at ``/docs``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync_service import __version__
from sync_service.api.routers import advocates, asks, health, opportunities, privacy, tokens
from sync_service.api.state import ApiState
from sync_service.report.web import build_router

log = logging.getLogger(__name__)


def _one_line(exc: RequestValidationError) -> str:
    """The first validation problem as ``where: what`` (no input echoed: it may be an email)."""
    errors = exc.errors()
    if not errors:
        return "malformed request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    what = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {what}{more}" if where else f"{what}{more}"


def create_app(state: ApiState) -> FastAPI:
    """The FastAPI app over ``state``."""
    app = FastAPI(
        title="Advocate sync & rules",
        version=__version__,
        description=(
            "Check an ask before making it and log it in the shared ledger, so the second team "
            "asking the same advocate the same week is told at once. Authenticate with a bearer "
            "token from `sync-service api-token create`."
        ),
    )
    app.state.api = state

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("HTTP %s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse({"detail": "internal error; see the service log"}, status_code=500)

    app.include_router(health.router)
    app.include_router(asks.router)
    app.include_router(advocates.router)
    app.include_router(opportunities.router)
    app.include_router(tokens.router)
    if state.report is not None:
        # any valid token reads the report (a viewer token is enough)
        app.include_router(build_router(state.report, state.tokens.lookup))
    app.include_router(privacy.router)
    return app
