"""``/healthz`` (liveness), ``/readyz`` (readiness, JSON) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from sync_service.api.auth import State, ops_guard
from sync_service.ops.health import readiness
from sync_service.ops.metrics import render

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_class=PlainTextResponse, summary="liveness")
def healthz() -> str:
    """200 while the process is alive and serving."""
    return "ok\n"


@router.get(
    "/readyz",
    dependencies=[Depends(ops_guard)],
    summary="readiness",
    responses={503: {"description": "not ready; the body says which check failed"}},
)
def readyz(state: State) -> JSONResponse:
    """200 when the store answers, the scheduler runs and no job's newest run failed; else 503."""
    report: dict[str, Any] = readiness(state.engine, state.scheduler_running)
    return JSONResponse(report, status_code=200 if report["ready"] else 503)


@router.get("/metrics", dependencies=[Depends(ops_guard)], summary="Prometheus metrics")
def metrics(state: State) -> Response:
    """The Prometheus text format (see sync_service.ops.metrics)."""
    return Response(render(state.registry), media_type=CONTENT_TYPE_LATEST)
