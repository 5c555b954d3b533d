"""`sync-service match` and GET /v1/opportunities/{id}/references give the same stored list."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.api.tokens import create_token
from sync_service.cli import main
from sync_service.match.config import parse_matching
from sync_service.match.stage import match_all
from sync_service.ops.runs import utcnow
from tests.api.support import make_state, serving
from tests.store_seed import eligible, seed

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, tzinfo=UTC)
A1, A2, A3 = "001000000000001AAA", "001000000000002AAA", "001000000000003AAA"
C2, C3 = "003000000000002AAA", "003000000000003AAA"
OPP, CLOSED = "006000000000001AAA", "006000000000002AAA"
EXPECTED = [
    {"contact_id": C2, "account_id": A2, "score": 80.0, "terms": {"industry": "Health"}},
    {"contact_id": C3, "account_id": A3, "score": 0.0, "terms": {}},
]


@pytest.fixture
def matched(engine: Engine) -> Engine:
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {"id": A1, "industry": "Health"},
            {"id": A2, "industry": "Health"},
            {"id": A3, "industry": "Retail"},
        ],
    )
    seed(engine, Entity.CONTACT, [{"id": C2, "account_id": A2}, {"id": C3, "account_id": A3}])
    eligible(engine, {C2: 80.0, C3: 100.0}, NOW)
    seed(
        engine,
        Entity.OPPORTUNITY,
        [
            {"id": OPP, "account_id": A1, "is_closed": False, "amount": 50_000.0},
            {"id": CLOSED, "account_id": A1, "is_closed": True, "amount": 50_000.0},
        ],
    )
    rules = parse_matching("terms: {industry: 1}\n", {}, "m.yaml")
    match_all(engine, rules, target=None, now=NOW, run_id=1)
    return engine


def test_the_match_command_prints_the_list_as_json_and_exits_2_for_an_unknown_deal(
    matched: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["match", OPP, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == EXPECTED
    assert main(["match", OPP]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"opportunity {OPP}: 2 suggested references"
    assert f"1. {C2}  account {A2}" in out
    assert main(["match", CLOSED, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["match", "006000000000404AAA"]) == 2
    assert "no opportunity '006000000000404AAA' in the store" in capsys.readouterr().err


def test_the_api_gives_the_same_list_to_a_token_and_404_for_an_unknown_deal(
    matched: Engine, tmp_path: Path
) -> None:
    tok = create_token(matched, team=None, name="viewer", role="viewer", now=utcnow())[1]
    with serving(make_state(matched, tmp=tmp_path)) as base:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {tok}"
        url = f"{base}/v1/opportunities/{{}}/references"
        got: Any = s.get(url.format(OPP), timeout=30)
        assert got.status_code == 200
        assert got.json() == EXPECTED
        missing = s.get(url.format("006000000000404AAA"), timeout=30)
        assert missing.status_code == 404
        assert "no opportunity" in missing.json()["detail"]
        assert requests.get(url.format(OPP), timeout=30).status_code == 401
