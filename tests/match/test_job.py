"""The match job keeps the last valid matching file when an edit is invalid, as the policy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from canonical.errors import MatchingError
from canonical.model import Entity
from connectors.memory import MemoryConnector
from sync_service.match.job import run_match
from sync_service.match.stage import suggestions_for
from sync_service.ops.runs import Run
from sync_service.settings import Settings
from tests.store_seed import eligible, seed

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
VALID = "top_n: 1\nterms:\n  industry: 1\n"
# the second line misspells the term: the edit is rejected with file:line:col
TYPO = "top_n: 1\nterms:\n  industy: 1\n"


@pytest.fixture
def store(engine: Engine) -> Engine:
    seed(
        engine,
        Entity.ACCOUNT,
        [
            {"id": "A1", "industry": "Health"},
            {"id": "A2", "industry": "Health"},
            {"id": "A3", "industry": "Retail"},
        ],
    )
    seed(
        engine, Entity.CONTACT, [{"id": "C2", "account_id": "A2"}, {"id": "C3", "account_id": "A3"}]
    )
    eligible(engine, {"C2": 50.0, "C3": 90.0}, NOW)
    seed(
        engine,
        Entity.OPPORTUNITY,
        [{"id": "O1", "account_id": "A1", "is_closed": False, "amount": 50_000.0}],
    )
    return engine


def _run(engine: Engine, matching: Path, snapshot: Path, run_id: int) -> Run:
    run = Run(id=run_id, job="match", started_at=NOW)
    run_match(
        engine,
        Settings(matching_file=matching),
        None,  # no mappings: suggestions stored, nothing written to a CRM
        run=run,
        connector_factory=MemoryConnector,
        now=lambda: NOW,
        snapshot=snapshot,
    )
    return run


def _picked(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [s["contact_id"] for s in suggestions_for(conn, "O1")]


def test_an_invalid_edit_is_reported_with_its_line_and_the_last_valid_rules_keep_matching(
    store: Engine, tmp_path: Path
) -> None:
    matching, snapshot = tmp_path / "matching.yaml", tmp_path / "var" / "matching.last-valid.yaml"
    matching.write_text(VALID, encoding="utf-8")
    first = _run(store, matching, snapshot, 1)
    assert first.config_errors == []
    assert snapshot.read_text(encoding="utf-8") == VALID
    assert _picked(store) == ["C2"]  # same industry beats a higher score elsewhere

    matching.write_text(TYPO, encoding="utf-8")
    second = _run(store, matching, snapshot, 2)
    assert second.status == "success"
    assert len(second.config_errors) == 1
    assert second.config_errors[0].startswith(f"{matching}:3:3: terms.industy: unknown")
    assert "did you mean 'industry'?" in second.config_errors[0]
    # ranked again with the last valid rules: the suggestions are neither lost nor changed
    assert second.counts["deals"] == 1
    assert _picked(store) == ["C2"]
    assert snapshot.read_text(encoding="utf-8") == VALID  # an invalid edit is never saved


def test_a_new_valid_edit_replaces_the_last_valid_rules(store: Engine, tmp_path: Path) -> None:
    matching, snapshot = tmp_path / "matching.yaml", tmp_path / "matching.last-valid.yaml"
    matching.write_text(VALID, encoding="utf-8")
    _run(store, matching, snapshot, 1)
    by_region = "top_n: 1\nterms:\n  region: 1\n"  # no shared region: the best score wins
    matching.write_text(by_region, encoding="utf-8")
    _run(store, matching, snapshot, 2)
    assert snapshot.read_text(encoding="utf-8") == by_region
    assert _picked(store) == ["C3"]


def test_without_a_valid_version_ever_seen_the_run_fails_with_every_problem(
    store: Engine, tmp_path: Path
) -> None:
    matching, snapshot = tmp_path / "matching.yaml", tmp_path / "matching.last-valid.yaml"
    matching.write_text(TYPO, encoding="utf-8")
    run = Run(id=1, job="match", started_at=NOW)
    with pytest.raises(MatchingError, match=r"matching\.yaml:3:3: terms\.industy"):
        run_match(
            store,
            Settings(matching_file=matching),
            None,
            run=run,
            connector_factory=MemoryConnector,
            now=lambda: NOW,
            snapshot=snapshot,
        )
    assert len(run.config_errors) == 1
    assert run.config_errors[0].startswith(f"{matching}:3:3:")
    assert not snapshot.exists()
    assert _picked(store) == []
