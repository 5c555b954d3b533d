"""What the end-to-end tests share: the service's environment pointed at a sandbox and a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]


def service_env(
    sb: Sandbox, db_url: str, settings: Path, *, gainsight: bool = True
) -> dict[str, str]:
    """The variables a run of the service needs: the sandbox's CRMs, the store, shipped YAML."""
    values = {
        **sb.env(),
        "DATABASE_URL": db_url,
        "SYNC_CONFIG": str(settings),
        "SYNC_MAPPINGS_DIR": str(REPO / "mappings"),
        "SYNC_RULES_FILE": str(REPO / "config" / "rules.yaml"),
        "SYNC_LOG_FORMAT": "text",
    }
    if not gainsight:
        values.pop("GAINSIGHT_BASE_URL")
        values.pop("GAINSIGHT_ACCESS_KEY")
    return values


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> dict[str, str]:
    """Put ``values`` in the test's environment (undone after it); returns them."""
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def without_faults(sandbox: Sandbox) -> Iterator[Sandbox]:
    """A module's sandbox for one test: faults an earlier test set are cleared, before and after."""
    sandbox.faults.reset()
    yield sandbox
    sandbox.faults.reset()
