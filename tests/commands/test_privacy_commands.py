"""``forget``, ``export-subject`` and the privacy lines of ``status`` on the command line."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sync_service.cli import main
from sync_service.store.engine import make_engine, upgrade
from tests.configs import ROOT
from tests.privacy.people import EMAIL, FIRST, SF_ID, seed_person


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("SYNC_CONFIG", "SYNC_HTTP_PORT", "SYNC_PRIVACY_KEY", "GAINSIGHT_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    db = tmp_path / "var" / "advocate.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    # status also checks the mappings and rules a run would use: the shipped ones
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(ROOT / "mappings"))
    monkeypatch.setenv("SYNC_RULES_FILE", str(ROOT / "config" / "rules.yaml"))
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    seed_person(engine)
    engine.dispose()
    return tmp_path


def test_forget_prints_the_audit_figures_and_never_the_person(
    store: Path, capsys: pytest.CaptureFixture[str]
):
    code = main(["forget", "--email", EMAIL, "--reason", "DSR-7", "--by", "dpo"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.startswith("erasure 1 recorded: ")
    assert "contacts 2" in out.out
    assert EMAIL not in out.out + out.err
    assert FIRST not in out.out + out.err
    key = store / "var" / "privacy.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # created on first use, owner only


def test_forget_needs_exactly_one_person_and_a_reason(
    store: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["forget", "--email", EMAIL]) == 2  # no --reason: argparse
    assert main(["forget", "--email", "x@y.io", "--contact", SF_ID, "--reason", "r"]) == 2
    assert main(["forget", "--email", "not an address", "--reason", "r"]) == 2
    err = capsys.readouterr().err
    assert "e-mail address" in err
    assert "Traceback" not in err


def test_export_subject_writes_an_owner_only_file(store: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["export-subject", "--contact", SF_ID, "--output", "dsr.json"]) == 0
    path = store / "dsr.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["counts"]["contacts"] == 2
    assert EMAIL in path.read_text()
    assert "wrote dsr.json: " in capsys.readouterr().out


def test_export_subject_prints_json_to_standard_output(
    store: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["export-subject", "--email", EMAIL]) == 0
    assert json.loads(capsys.readouterr().out)["found"] is True


def test_status_shows_erasures_and_retention(store: Path, capsys: pytest.CaptureFixture[str]):
    main(["forget", "--contact", SF_ID, "--reason", "DSR-8"])
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Privacy: 1 erasure(s)" in out
    assert "deleted records purged after 30 days" in out
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["privacy"]
    assert report["erasures"] == 1
    assert report["tombstones"] >= 3
