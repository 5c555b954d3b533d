"""/report and /report/{table}.csv: token required, cookie sign-in, the same figures as CSV."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from sync_service.report import ReportOptions
from sync_service.report.web import COOKIE, ReportSource, build_router, same_token
from tests.report.random_store import NOW, make_store
from tests.report.serving import serving

TOKEN = "viewer-secret-token"


@pytest.fixture
def source(engine: Engine) -> ReportSource:
    make_store(engine, 9, contacts=60)
    return ReportSource(engine, lambda: ReportOptions(window_days=60), lambda: NOW)


class Client:
    """requests against the served app, with its base URL and one session (cookies kept)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def get(self, path: str, **kw: object) -> requests.Response:
        return self.session.get(self.base + path, timeout=60, **kw)  # type: ignore[arg-type]

    def post(self, path: str, **kw: object) -> requests.Response:
        return self.session.post(self.base + path, timeout=60, **kw)  # type: ignore[arg-type]


@pytest.fixture
def client(source: ReportSource) -> Iterator[Client]:
    app = FastAPI()
    app.include_router(build_router(source, same_token(TOKEN)))
    with serving(app) as base:
        yield Client(base)


@pytest.mark.parametrize("path", ["/report", "/report/coverage.csv"])
def test_the_report_needs_a_token(client: Client, path: str) -> None:
    assert client.get(path).status_code == 401
    wrong = client.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "sign in at /report/login" in wrong.json()["detail"]


def test_a_bearer_token_reads_the_page_with_strict_headers(client: Client) -> None:
    r = client.get("/report", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert 'href="/report/pool.csv"' in r.text
    assert "<script" not in r.text


def test_each_table_is_served_as_csv_with_the_reports_rows(
    client: Client, source: ReportSource
) -> None:
    report, _ = source.get()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for key in ("pool", "utilisation", "coverage", "demand", "retention", "most-asked"):
        r = client.get(f"/report/{key}.csv", headers=auth)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        table = report.table(key)
        assert table is not None
        assert r.text == table.to_csv()
    missing = client.get("/report/nothing.csv", headers=auth)
    assert missing.status_code == 404
    assert "there are: pool, utilisation" in missing.json()["detail"]


def test_a_browser_signs_in_once_with_the_token(client: Client) -> None:
    form = client.get("/report/login")
    assert form.status_code == 200
    assert 'type="password"' in form.text
    bad = client.post("/report/login", data={"token": "guess"}, allow_redirects=False)
    assert bad.status_code == 401
    assert "not valid" in bad.text
    ok = client.post("/report/login", data={"token": TOKEN}, allow_redirects=False)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/report"
    cookie = ok.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "Path=/report" in cookie
    assert "samesite=strict" in cookie.lower()
    assert client.get("/report").status_code == 200  # the cookie now carries the token
    client.post("/report/logout", allow_redirects=False)
    assert client.get("/report").status_code == 401


def test_the_live_report_is_reused_for_a_minute(source: ReportSource) -> None:
    first, _ = source.get()
    assert source.get()[0] is first
    source.max_age_seconds = 0
    assert source.get()[0] is not first
