"""``/report`` on the app ``serve`` runs: any valid token (a viewer's) reads it, none may not."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy.engine import Engine

from sync_service.api.server import build_state
from sync_service.api.tokens import create_token
from sync_service.context import AppContext
from sync_service.report.build import ReportOptions
from sync_service.report.web import ReportSource
from tests.api.support import make_state, serving

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_report_is_served_to_a_viewer_token_only(engine: Engine) -> None:
    _, viewer = create_token(engine, team="Program", name="pm", role="viewer", now=NOW)
    state = dataclasses.replace(
        make_state(engine), report=ReportSource(engine, lambda: ReportOptions(), lambda: NOW)
    )
    with serving(state) as base:
        refused = requests.get(f"{base}/report", timeout=30)
        assert refused.status_code == 401
        assert (
            requests.get(
                f"{base}/report", headers={"Authorization": "Bearer nope"}, timeout=30
            ).status_code
            == 401
        )
        page = requests.get(
            f"{base}/report", headers={"Authorization": f"Bearer {viewer}"}, timeout=60
        )
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<svg" in page.text


def test_serve_builds_the_report_route_from_its_settings(tmp_path: Path, db_url: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(
        f"database_url: {db_url}\nmappings_dir: {repo / 'mappings'}\n"
        f"rules_file: {repo / 'config' / 'rules.yaml'}\n",
        encoding="utf-8",
    )
    ctx = AppContext(config_path=str(cfg), env={})
    try:
        state = build_state(ctx)
        assert state.report is not None
        assert state.report.options().window_days == ctx.settings.report.window_days
    finally:
        ctx.close()
