"""A full run's logs never carry a token, a password, a key or a contact email."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]


def run_cycle_logged(sb: Sandbox, tmp_path: Path, flow: str, fmt: str) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SALESFORCE_", "GAINSIGHT_"))},
        **sb.env(flow),
        "DATABASE_URL": f"sqlite:///{tmp_path / f'{flow}-{fmt}.db'}",
        "SYNC_LOG_LEVEL": "DEBUG",
        "SYNC_LOG_FORMAT": fmt,
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "sync_service", "run-once"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(("flow", "fmt"), [("password", "json"), ("client_credentials", "text")])
def test_full_run_logs_no_secret_and_no_contact_email(tmp_path: Path, flow: str, fmt: str):
    with Sandbox(accounts=40, seed=5) as sb:
        # Errors and renewals are where secrets tend to leak: make some happen.
        sb.faults.rate_503 = 0.05
        sb.faults.token_ttl = 0.5
        logs = run_cycle_logged(sb, tmp_path, flow, fmt)
        issued = list(sb._sf_app.tokens)  # type: ignore[union-attr]  # every token it handed out
        emails = {r["Email"] for r in sb.records("Contact", include_deleted=True) if r.get("Email")}
        key_lines = [
            line
            for line in Path(sb.credentials["private_key_file"]).read_text().splitlines()
            if line and not line.startswith("-----")
        ]
    assert "DEBUG" in logs or '"level": "debug"' in logs.lower()  # the run did log, verbosely
    secrets = [
        sb.credentials["client_secret"],
        sb.credentials["password"],
        sb.credentials["gainsight_access_key"],
        sb.credentials["access_token"],
        sb.credentials["refresh_token"],
        *issued,
        *key_lines,
    ]
    leaked = [s[:6] + "…" for s in secrets if s and s in logs]
    assert leaked == []
    lowered = logs.lower()
    assert [e for e in emails if e.strip().lower() in lowered] == []
    assert len(emails) > 100
