"""``sync-service check`` (exit 0 allowed, 1 not, 2 bad input) and ``api-token``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync_service.api.tokens import hash_token
from sync_service.cli import main
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import api_tokens, ask_audit
from tests.api.support import RULES, seed_contacts

A1 = "001000000000001AAA"
C1 = "003000000000001AAA"
C2 = "003000000000002AAA"
C3 = "003000000000003AAA"  # consented to reference calls only


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    for var in ("SYNC_CONFIG", "SYNC_HTTP_PORT", "SYNC_MAPPINGS_DIR"):
        monkeypatch.delenv(var, raising=False)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SYNC_RULES_FILE", str(RULES))
    engine = make_engine(url)
    upgrade(engine)
    seed_contacts(
        engine,
        {A1: [C1, C2, C3]},
        statuses={C2: "Suspended"},
        consents={C3: "Reference Call"},
    )
    engine.dispose()
    return url


def test_check_exits_0_when_allowed_1_when_not_2_for_bad_input(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", C1, "--type", "Webinar", "--team", "Events"]) == 0
    assert capsys.readouterr().out.startswith(f"ALLOWED: Webinar for contact {C1} (Eligible)")
    assert main(["check", "--json", C2, "--type", "Webinar"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["allowed"] is False
    assert out["status"] == "Suspended"
    assert main(["check", "someone@example.com", "--type", "Webinar"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: no contact with that email in the store (synced contacts only)"
    assert main(["check", C1, "--type", " "]) == 2
    assert main(["check", C1]) == 2  # --type is required
    engine = make_engine(store)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ask_audit.c.token_name, ask_audit.c.result)).all()
    engine.dispose()
    assert rows == [("cli", "allowed"), ("cli", "refused"), ("cli", "not_found")]


def test_check_refuses_an_ask_type_the_contact_has_not_consented_to(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", C3, "--type", "Case Study"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"NOT ALLOWED: Case Study for contact {C3} (Eligible)")
    assert "  - No consent for Case Study (needed for a Case Study ask)" in out.splitlines()
    assert main(["check", "--json", C3, "--type", "Reference Call"]) == 0
    assert json.loads(capsys.readouterr().out)["allowed"] is True


def test_api_tokens_are_shown_once_stored_hashed_listed_and_revoked(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["api-token", "create", "--team", "Marketing", "--name", "mkt", "--json"]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    assert token.startswith("asg_")
    engine = make_engine(store)
    with engine.connect() as conn:
        (stored,) = conn.execute(sa.select(api_tokens.c.token_hash)).scalars().all()
    engine.dispose()
    assert stored == hash_token(token)
    assert token not in stored
    assert main(["api-token", "create", "--team", "Marketing", "--name", "mkt"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["api-token", "create", "--name", "lonely"]) == 2  # a team token needs a team
    assert main(["api-token", "list"]) == 0
    listing = capsys.readouterr().out
    assert "mkt" in listing
    assert token not in listing
    assert main(["api-token", "revoke", "mkt"]) == 0
    assert main(["api-token", "revoke", "mkt"]) == 2
    assert capsys.readouterr().out == "token 'mkt' revoked\n"
    assert main(["api-token", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["revoked_at"] is not None
