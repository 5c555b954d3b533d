"""``sync-service writeback``: dry run, a real run through the shipped mappings, hold/confirm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.cli import main
from sync_service.store.models import runs, writeback_outbox
from sync_service.writeback import job
from tests.writeback.fakes import (
    FIELDS,
    FakeCRM,
    blank,
    evaluation,
    seed_evaluations,
    sync_from,
    sync_records,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Engine, FakeCRM]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(REPO / "mappings"))
    monkeypatch.setenv("SYNC_CONFIG", str(REPO / "config" / "settings.yaml"))
    for var in ("GAINSIGHT_BASE_URL", "GAINSIGHT_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    crm = FakeCRM()

    def fake_connectors(settings: Any, systems: Any) -> dict[str, Any]:
        return {"salesforce": crm}

    monkeypatch.setattr(job, "build_connectors", fake_connectors)
    monkeypatch.setattr("sync_service.writeback.runner.time.sleep", lambda _s: None)
    return engine, crm


def ids(n: int) -> list[str]:
    return [f"003{i:015d}" for i in range(n)]


def test_dry_run_prints_counts_and_samples_and_writes_nothing(
    cli_env: tuple[Engine, FakeCRM], capsys: pytest.CaptureFixture[str]
):
    engine, crm = cli_env
    rid = ids(3)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    assert main(["writeback", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 would change" in out
    assert "salesforce.Contact.Advocate_Status__c: 3" in out
    assert f'Contact {rid[0]}: Advocate_Status__c: ∅ -> "Eligible"' in out
    assert crm.write_calls == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(writeback_outbox)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 0


def test_a_run_writes_and_records_its_figures(
    cli_env: tuple[Engine, FakeCRM], capsys: pytest.CaptureFixture[str]
):
    engine, crm = cli_env
    rid = ids(3)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    assert main(["writeback"]) == 0
    assert "confirmed 3 records" in capsys.readouterr().out
    assert crm.data["Contact"][rid[2]][FIELDS["status"]] == "Eligible"
    with engine.connect() as conn:
        rec = conn.execute(sa.select(runs)).mappings().one()
    assert rec["job"] == "writeback"
    assert rec["status"] == "success"
    assert rec["counts"]["writeback.success"] == 3
    assert rec["counts"]["writeback.calls"] == 1


def test_a_held_run_exits_1_and_confirm_releases_it(
    cli_env: tuple[Engine, FakeCRM], capsys: pytest.CaptureFixture[str]
):
    engine, crm = cli_env
    rid = ids(60)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    assert main(["writeback"]) == 0
    sync_from(engine, crm)
    seed_evaluations(engine, {r: evaluation("Suspended", False) for r in rid})
    capsys.readouterr()

    assert main(["writeback"]) == 1
    out = capsys.readouterr().out
    assert "writeback held" in out
    assert "--confirm" in out
    assert main(["writeback", "--dry-run"]) == 0
    assert "(a real run would be held)" in capsys.readouterr().out

    assert main(["writeback", "--confirm"]) == 0
    assert {crm.data["Contact"][r][FIELDS["status"]] for r in rid} == {"Suspended"}
    with engine.connect() as conn:
        statuses = [r[0] for r in conn.execute(sa.select(runs.c.status).order_by(runs.c.id))]
    assert statuses == ["success", "held", "success"]
