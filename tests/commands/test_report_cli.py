"""``sync-service report``: the three formats, --by, and bad input."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from sync_service.cli import main
from sync_service.mapping import load_mappings
from sync_service.report import build_report
from sync_service.report.build import options_from_settings
from sync_service.settings import load_settings
from tests.report.random_store import make_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(ROOT / "mappings"))
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "report:\n"
        "  window_days: 60\n"
        "  crm_url: https://acme.my.salesforce.com\n"
        "  coverage_targets:\n"
        "    segment: {at_least: 25, values: {Public Sector: 3}}\n"
    )
    monkeypatch.setenv("SYNC_CONFIG", str(settings))
    make_store(engine, 5, contacts=160)
    return engine


def test_html_goes_to_the_default_file_and_says_where(
    store: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    path = Path("var/report/advocate-report.html")
    assert str(path) in out
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "Public Sector" in html  # the target from the settings file


def test_json_carries_the_same_figures_as_the_report(
    store: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--format", "json", "--by", "employees"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["window_days"] == 60
    settings = load_settings()
    options = options_from_settings(settings, load_mappings(ROOT / "mappings"), by=["employees"])
    again = build_report(store, options, datetime.fromisoformat(data["generated_at"]))
    assert json.loads(json.dumps(again.as_dict())) == data
    fields = {row["field"] for row in data["sections"]["coverage"]["tables"]["coverage"]}
    assert fields == {"region", "segment", "industry", "employees"}


def test_csv_writes_one_file_per_table(store: Engine, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    assert main(["report", "--format", "csv", "--out", str(out), "--window-days", "30"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "coverage.csv" in names
    assert "most-asked.csv" in names
    assert "pool.csv" in names
    with (out / "utilisation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["asks"] == "0"
    assert sum(int(r["advocates"]) for r in rows) > 0


def test_an_unknown_by_field_is_bad_input(
    store: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--by", "shoe_size"]) == 2
    err = capsys.readouterr().err
    assert "--by shoe_size: no such mapped field" in err
    assert "accounts.segment" in err
    assert "Traceback" not in err


def test_a_window_of_zero_days_is_bad_input(
    store: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--window-days", "0"]) == 2
    assert "--window-days 0" in capsys.readouterr().err


def test_an_unknown_report_setting_is_refused(
    store: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "settings.yaml").write_text(
        "report:\n  coverage_targets:\n    segment: {least: 3}\n"
    )
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    assert "report.coverage_targets.segment.least: unknown setting" in err
