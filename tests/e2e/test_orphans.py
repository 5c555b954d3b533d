"""Referential checks end to end: a contact whose account does not exist is never silent.

It is kept in the store (its account may still arrive), counted by the evaluation run and by
``status``, not evaluated and not written back; once its account exists it is evaluated as usual.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sync_service.cli import main
from sync_service.context import AppContext
from sync_service.pipeline import run_cycle
from sync_service.store.models import contacts, evaluations
from tests.e2e.support import service_env, set_env

REPO = Path(__file__).resolve().parents[2]
NOWHERE = "001000000000ZZZAA2"  # well formed, but no such account


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(accounts=12, seed=21) as sandbox:
        yield sandbox


@pytest.fixture
def ctx(
    sb: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppContext]:
    monkeypatch.chdir(tmp_path)
    env = set_env(
        monkeypatch,
        service_env(sb, db_url, REPO / "config" / "settings.yaml", gainsight=False),
    )
    monkeypatch.delenv("GAINSIGHT_BASE_URL", raising=False)
    monkeypatch.delenv("GAINSIGHT_ACCESS_KEY", raising=False)
    context = AppContext(config_path=env["SYNC_CONFIG"], env=env)
    yield context
    context.close()


def test_a_contact_whose_account_does_not_exist_is_kept_counted_and_not_evaluated(
    sb: Sandbox, ctx: AppContext, capsys: pytest.CaptureFixture[str]
) -> None:
    template = next(c for c in sb.records("Contact") if c.get("Reference_Opt_In__c"))
    orphan = sb.insert(
        "Contact",
        {
            "LastName": "Nowhere",
            "Email": "nowhere@example.com",
            "AccountId": NOWHERE,
            "Reference_Opt_In__c": True,
        },
    )
    runs = run_cycle(ctx)
    assert [r.status for r in runs] == ["success"] * 4, [r.as_dict() for r in runs]  # + match
    evaluated = runs[1]
    assert evaluated.counts["orphans.contacts.account"] == 1
    with ctx.engine.connect() as conn:
        stored = conn.execute(sa.select(contacts.c.account_id).where(contacts.c.id == orphan))
        assert stored.scalar_one() == NOWHERE  # kept
        verdict = conn.execute(
            sa.select(evaluations.c.status).where(evaluations.c.entity_id == orphan)
        ).first()
        other = conn.execute(
            sa.select(evaluations.c.status).where(evaluations.c.entity_id == template["Id"])
        ).first()
    assert verdict is None  # not evaluated ...
    assert other is not None
    assert sb.record("Contact", orphan)["Advocate_Status__c"] is None  # ... and not written

    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{") :])
    assert report["orphans"]["contacts.account"] == 1
    assert report["orphans"]["total"] >= 1
    assert main(["status"]) == 0
    assert "Orphans (kept; such contacts are not evaluated): " in capsys.readouterr().out

    # Its account arrives (here: the reference is mended in the CRM): evaluated as usual.
    sb.update("Contact", orphan, {"AccountId": template["AccountId"]})
    again = run_cycle(ctx)
    assert [r.status for r in again] == ["success"] * 4
    # an incremental cycle counts orphans in its scope only; `status` counts the whole store
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["orphans"]["contacts.account"] == 0
    with ctx.engine.connect() as conn:
        verdict = conn.execute(
            sa.select(evaluations.c.status).where(evaluations.c.entity_id == orphan)
        ).first()
    assert verdict is not None
