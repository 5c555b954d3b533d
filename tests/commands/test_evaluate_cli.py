"""The evaluate and explain commands end to end on a seeded store."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.cli import main
from sync_service.store.models import contacts, evaluations, runs, writeback_log
from tests.store_seed import seed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    rules = tmp_path / "rules.yaml"
    rules.write_text((ROOT / "config" / "rules.yaml").read_text())
    monkeypatch.setenv("SYNC_RULES_FILE", str(rules))
    today = datetime.now(UTC).date()
    seed(engine, Entity.ACCOUNT, [{"id": "001A", "customer_since": today - timedelta(days=500)}])
    seed(
        engine,
        Entity.CONTACT,
        [
            {"id": "003A", "account_id": "001A", "opted_in": True},
            {"id": "003B", "account_id": "001A", "opted_in": True},
        ],
    )
    seed(
        engine,
        Entity.NPS_RESPONSE,
        [
            {
                "id": "n1",
                "contact_id": "003A",
                "score": 9,
                "responded_at": datetime.now(UTC) - timedelta(days=3),
            },
        ],
    )
    seed(
        engine,
        Entity.ASK,
        [
            {
                "id": "k1",
                "contact_id": "003A",
                "account_id": "001A",
                "ask_type": "Reference Call",
                "requested_date": today - timedelta(days=2),
            },
        ],
    )
    return engine


def statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.entity_id: r.status for r in conn.execute(sa.select(evaluations))}


def test_evaluate_dry_run_then_for_real(store: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 statuses would change" in out
    assert "dry run: nothing was written" in out
    assert "(none) -> Fatigued" in out
    assert "003A" in out
    assert statuses(store) == {}
    assert main(["evaluate"]) == 0
    assert statuses(store) == {"003A": "Fatigued", "003B": "Not Eligible", "001A": "Fatigued"}
    with store.connect() as conn:
        run = conn.execute(sa.select(runs).where(runs.c.job == "evaluate")).mappings().one()
    assert run["status"] == "success"
    assert run["counts"]["evaluated.contacts"] == 2


def test_a_broken_rules_file_keeps_the_last_valid_policy(
    store: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["evaluate"]) == 0
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules.read_text().replace("open_escalations > 0", "open_escalation > 0"))
    assert main(["evaluate"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'open_escalations'" in err
    assert "last valid policy" in err
    with store.connect() as conn:
        last = conn.execute(sa.select(runs).order_by(runs.c.id.desc())).mappings().first()
    assert last is not None
    assert last["status"] == "success"
    assert last["config_errors"]


#: Records that the CRM got ``new_value`` in 003A's ``field`` at a time.
Written = Callable[[str, str, datetime], None]


@pytest.fixture
def evaluated(store: Engine, capsys: pytest.CaptureFixture[str]) -> Written:
    """The store evaluated once (its output dropped), and a way to log a value written to 003A."""
    assert main(["evaluate"]) == 0
    capsys.readouterr()

    def written(field: str, new_value: str, at: datetime) -> None:
        with store.begin() as conn:
            conn.execute(
                sa.insert(writeback_log).values(
                    target="salesforce",
                    object_name="Contact",
                    record_id="003A",
                    field=field,
                    old_value=None,
                    new_value=new_value,
                    policy_version="x",
                    written_at=at,
                )
            )

    return written


def test_explain_a_contact_in_json_and_text(
    evaluated: Written, capsys: pytest.CaptureFixture[str]
) -> None:
    evaluated("Advocate_Status__c", "Fatigued", datetime.now(UTC))
    assert main(["explain", "003A", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "Fatigued"
    assert out["features"]["nps_latest"] == 9
    assert {c["id"]: c["binding"] for c in out["caps"]}["reference_calls"] is True
    assert out["last_evaluation"]["status"] == "Fatigued"
    assert out["history"][0]["new_status"] == "Fatigued"
    assert out["writeback"][0]["new_value"] == "Fatigued"
    assert main(["explain", "003A"]) == 0
    text = capsys.readouterr().out
    assert "[cap] reference_calls: 1 reference call ask in 30 days, cap 1 (BINDS" in text
    assert "Advocate_Status__c" in text
    assert main(["explain", "001A", "--json"]) == 0
    acc = json.loads(capsys.readouterr().out)
    assert acc["entity_type"] == "account"
    assert acc["status"] == "Fatigued"
    assert acc["contacts"]["by_status"] == {"Fatigued": 1, "Not Eligible": 1}
    assert main(["explain", "003NOPE"]) == 2


def test_explain_prints_values_for_people_not_python(
    evaluated: Written, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime(2026, 12, 6, 9, 41, 27, 123456, tzinfo=UTC)
    evaluated("Advocate_Next_Available__c", "2026-12-06", at)
    assert main(["explain", "003A"]) == 0
    text = capsys.readouterr().out
    assert (
        "2026-12-06 09:41 UTC  salesforce Contact.Advocate_Next_Available__c: — -> 2026-12-06"
        in text
    )
    assert "True" not in text
    assert "None" not in text
    assert "'" not in text.split("written to the CRM")[1]
    assert ".123456" not in text
    assert "opted_in" in text
    opted = next(line for line in text.splitlines() if line.strip().startswith("opted_in "))
    assert opted.split()[-1] == "yes"


def test_explain_lists_the_matches_of_a_name_that_fits_several(
    store: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with store.begin() as conn:
        conn.execute(
            sa.update(contacts).values(
                last_name="Doe", first_name=sa.case((contacts.c.id == "003A", "Jane"), else_="John")
            )
        )
    capsys.readouterr()
    assert main(["explain", "doe"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("2 records match 'doe'; explain one by its id:")
    assert "contact  003A  Jane Doe" in out
    assert "contact  003B  John Doe" in out
    assert main(["explain", "Jane Doe"]) == 0
    assert capsys.readouterr().out.startswith("contact 003A  Jane Doe")
