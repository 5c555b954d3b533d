"""``sync-service sandbox`` in a real process: prints what to export, serves, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_sandbox_command_prints_env_serves_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync_service",
            "sandbox",
            "--accounts",
            "15",
            "--port",
            "0",
            "--gainsight-port",
            "0",
            "--auth-flow",
            "client_credentials",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert {"SALESFORCE_LOGIN_URL", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"} <= set(
            exports
        )
        session = requests.Session()
        session.trust_env = False
        session.verify = exports["REQUESTS_CA_BUNDLE"]
        token = session.post(
            exports["SALESFORCE_LOGIN_URL"] + "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": exports["SALESFORCE_CLIENT_ID"],
                "client_secret": exports["SALESFORCE_CLIENT_SECRET"],
            },
            timeout=10,
        )
        assert token.status_code == 200
        gs = session.post(
            exports["GAINSIGHT_BASE_URL"] + "/v1/data/objects/query/Company",
            json={"select": ["Gsid"], "limit": 1},
            headers={"accesskey": exports["GAINSIGHT_ACCESS_KEY"]},
            timeout=10,
        )
        assert gs.status_code == 200
        session.close()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "Stopping the sandbox" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
