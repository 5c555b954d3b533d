"""``/report`` and ``/report/{table}.csv``: the program report, live, behind an API token.

A FastAPI router the HTTP app includes. Any valid API token may read it (a viewer token is
enough): send it as ``Authorization: Bearer <token>``, or sign in once in a browser at
``/report/login``, which keeps the token in an HttpOnly, SameSite=Strict cookie scoped to
``/report``. No page here runs a script or fetches anything; the response headers say so too
(Content-Security-Policy ``default-src 'none'``), and nothing is cached by the browser or a
proxy: the page names people.

The report is built at most once per ``max_age_seconds`` (a minute by default): at a million
contacts a build takes seconds, and the figures only move when an evaluation runs.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from sync_service.report.build import ReportOptions, build_report
from sync_service.report.charts import Chart, draw
from sync_service.report.page import render_html
from sync_service.report.tables import Report

COOKIE = "report_token"
#: A browser sign-in lasts a working day.
COOKIE_SECONDS = 8 * 3600
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_bearer = HTTPBearer(auto_error=False)

#: Whether a token string is a valid API token (any role may read the report).
TokenCheck = Callable[[str], object]


class ReportSource:
    """Builds the report (and its charts) for the live page, reusing a recent one."""

    def __init__(
        self,
        engine: Engine,
        options: Callable[[], ReportOptions],
        now: Callable[[], datetime],
        *,
        max_age_seconds: float = 60.0,
    ) -> None:
        self.engine = engine
        self.options = options
        self.now = now
        self.max_age_seconds = max_age_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, Report, dict[str, list[Chart]]] | None = None

    def get(self) -> tuple[Report, dict[str, list[Chart]]]:
        """The report and its charts, rebuilt when older than ``max_age_seconds``."""
        with self._lock:  # one build at a time; the others wait and take its result
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] >= self.max_age_seconds:
                report = build_report(self.engine, self.options(), self.now())
                cached = (time.monotonic(), report, draw(report))
                self._cached = cached
            return cached[1], cached[2]


def _login_page(message: str = "", status: int = 200) -> HTMLResponse:
    note = f'<p class="err" role="alert">{escape(message)}</p>' if message else ""
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in: advocate program report</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
label,input,button{{display:block;width:100%;font-size:1rem}}
input{{padding:.4rem;margin:.3rem 0 1rem}}button{{padding:.5rem}}
.err{{color:#D55E00;font-weight:600}}</style></head>
<body><h1>Advocate program report</h1>{note}
<form method="post" action="/report/login">
<label for="token">API token (any role; a viewer token is enough)</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<button type="submit">Sign in</button></form>
<p>Create a token with <code>sync-service api-token create</code>.</p></body></html>"""
    headers = dict(HEADERS)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return HTMLResponse(body, status_code=status, headers=headers)


def token_of(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str | None:
    """The token a request carries: the bearer header, else the sign-in cookie."""
    if creds is not None and creds.credentials:
        return creds.credentials
    return request.cookies.get(COOKIE)


class _Reader:
    """The dependency of every report route: 401 unless the request carries a valid token."""

    def __init__(self, check: TokenCheck) -> None:
        self.check = check

    def __call__(self, token: Annotated[str | None, Depends(token_of)]) -> None:
        if not token or not self.check(token):
            raise HTTPException(
                401,
                "the report needs an API token: 'Authorization: Bearer <token>', or sign in "
                "at /report/login",
                headers={"WWW-Authenticate": "Bearer"},
            )


def build_router(source: ReportSource, check: TokenCheck) -> APIRouter:
    """The report's routes over ``source``; ``check(token)`` is truthy for a valid token."""
    router = APIRouter(tags=["report"])

    reader = _Reader(check)

    @router.get("/report/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form() -> HTMLResponse:
        return _login_page()

    @router.post("/report/login", response_class=HTMLResponse, include_in_schema=False)
    async def login(request: Request) -> Response:
        # A plain urlencoded form: read it without another dependency for multipart parsing.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or not check(token):
            return _login_page("That token is not valid (or was revoked).", status=401)
        response = RedirectResponse("/report", status_code=303, headers=HEADERS)
        response.set_cookie(
            COOKIE,
            token,
            max_age=COOKIE_SECONDS,
            path="/report",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/report/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/report/login", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/report")
        return response

    @router.get(
        "/report",
        response_class=HTMLResponse,
        summary="The program report as one HTML page",
        dependencies=[Depends(reader)],
    )
    def page() -> HTMLResponse:
        report, charts = source.get()
        return HTMLResponse(
            render_html(report, csv_base="/report/", charts=charts), headers=HEADERS
        )

    @router.get(
        "/report/{table}.csv",
        summary="One table of the report as CSV",
        dependencies=[Depends(reader)],
    )
    def table_csv(table: str) -> Response:
        report, _ = source.get()
        found = report.table(table)
        if found is None:
            names = ", ".join(t.key for t in report.tables())
            raise HTTPException(404, f"no report table '{table}'; there are: {names}")
        return Response(
            found.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={
                **HEADERS,
                "Content-Disposition": f'attachment; filename="{found.key}.csv"',
            },
        )

    return router


def same_token(expected: str) -> TokenCheck:
    """A check against one fixed token (constant time), for tests and a single-user setup."""

    def check(token: str) -> bool:
        return hmac.compare_digest(token.encode(), expected.encode())

    return check
