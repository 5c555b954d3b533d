"""An admin renames a writeback field in the org, edits the mapping, and values land there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sync_service.context import AppContext
from sync_service.pipeline import run_cycle
from sync_service.store.models import evaluations, runs

REPO = Path(__file__).resolve().parents[2]


def cycle(sb: Sandbox, url: str, mappings: Path) -> AppContext:
    ctx = AppContext(env={**sb.env(), "DATABASE_URL": url, "SYNC_MAPPINGS_DIR": str(mappings)})
    results = run_cycle(ctx)
    assert {r.status for r in results} == {"success"}, [(r.job, r.error) for r in results]
    return ctx


def contact_statuses(ctx: AppContext) -> dict[str, str]:
    with ctx.engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(evaluations.c.entity_id, evaluations.c.status).where(
                    evaluations.c.entity_type == "contact"
                )
            ).all()
        )


def test_renamed_writeback_field_receives_the_values_after_the_mapping_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
):
    monkeypatch.chdir(REPO)
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    url = db_url
    with Sandbox(accounts=30, seed=3) as sb:
        cycle(sb, url, mappings).engine.dispose()
        before = {r["Id"]: r for r in sb.records("Contact")}
        assert any(r["Advocate_Status__c"] for r in before.values())

        sb.rename_field("Contact", "Advocate_Status__c", "Advocacy_Status__c")
        text = (mappings / "salesforce.yaml").read_text()
        contact_part, account_part = text.split("  account:", 1)
        (mappings / "salesforce.yaml").write_text(
            contact_part.replace("status: Advocate_Status__c", "status: Advocacy_Status__c")
            + "  account:"
            + account_part
        )
        # A rename keeps the column's data, so the old values are already in the new field:
        # make some statuses change, so that values must be written to the new field.
        withdrawn = [
            r["Id"]
            for r in before.values()
            if not r.get("Advocate_Override__c") and r["Advocate_Status__c"] != "Opted Out"
        ][:5]
        assert len(withdrawn) == 5
        for cid in withdrawn:
            sb.update("Contact", cid, {"Reference_Opt_Out__c": True})
        ctx = cycle(sb, url, mappings)
        statuses = contact_statuses(ctx)
        after = sb.records("Contact")
        ctx.engine.dispose()

    mine = [r for r in after if not r.get("Advocate_Override__c")]
    assert mine
    assert all(r["Advocacy_Status__c"] == statuses[r["Id"]] for r in mine)
    assert all("Advocate_Status__c" not in r for r in after)
    by_id = {r["Id"]: r for r in after}
    assert [by_id[cid]["Advocacy_Status__c"] for cid in withdrawn] == ["Opted Out"] * 5


def test_broken_mapping_edit_is_rejected_and_the_last_valid_one_keeps_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
):
    monkeypatch.chdir(REPO)
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    url = db_url
    with Sandbox(accounts=20, seed=4) as sb:
        cycle(sb, url, mappings).engine.dispose()
        good = (mappings / "salesforce.yaml").read_text()
        (mappings / "salesforce.yaml").write_text(good.replace("object: Contact", "object: [", 1))
        sb.update("Contact", sb.records("Contact")[0]["Id"], {"Title": "Chief Advocate"})
        ctx = AppContext(env={**sb.env(), "DATABASE_URL": url, "SYNC_MAPPINGS_DIR": str(mappings)})
        results = run_cycle(ctx)
        with ctx.engine.connect() as conn:
            rejected = conn.execute(
                sa.select(runs.c.config_errors)
                .where(runs.c.job == "salesforce")
                .order_by(runs.c.id.desc())
            ).first()
        ctx.engine.dispose()
    assert results[0].status == "success"
    assert rejected is not None
    assert rejected[0]
    assert "salesforce.yaml" in rejected[0][0]
