"""Build the API over a test store and serve it under uvicorn on a loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from rules import load_policy
from sync_service.api.ratelimit import RateLimiter
from sync_service.api.server import ApiServer
from sync_service.api.state import ApiState, PolicyCache
from sync_service.api.tokens import TokenCache
from sync_service.evaluate.ask_audit import AuditSink
from sync_service.evaluate.guard import Guard
from sync_service.mapping.asks import AskFields
from sync_service.ops.metrics import build_registry
from sync_service.ops.runs import utcnow

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "rules.yaml"
#: Every consent the shipped policy asks for: seeded contacts may be asked any type by default.
EVERY_CONSENT = ";".join(dict.fromkeys(load_policy(RULES).consent_requires.values()))


def make_state(
    engine: Engine,
    *,
    tmp: Path | None = None,
    rules: Path = RULES,
    fields: AskFields | None = None,
    ops_token: str | None = None,
    scheduler_running: Callable[[], bool] | None = None,
    rate: float = 10_000.0,
    burst: int = 10_000,
    now: Callable[[], datetime] = utcnow,
    audit_interval: float = 0.0,
) -> ApiState:
    snapshot = (tmp or Path("/nonexistent")) / "rules.last-valid.yaml"
    guard = Guard(
        engine,
        PolicyCache(rules, snapshot),
        fields,
        AuditSink(engine, interval=audit_interval),
        now,
    )
    return ApiState(
        engine=engine,
        guard=guard,
        tokens=TokenCache(engine, ttl=0.0),
        limiter=RateLimiter(rate, burst),
        registry=build_registry(engine),
        ops_token=ops_token,
        scheduler_running=scheduler_running,
    )


@contextmanager
def serving(state: ApiState) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1 (a free port); yields its base URL."""
    srv = ApiServer(state, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def seed_contacts(
    engine: Engine,
    contacts_by_account: dict[str, list[str]],
    *,
    status: str = "Eligible",
    statuses: dict[str, str] | None = None,
    consents: dict[str, str | None] | None = None,
    now: datetime | None = None,
) -> None:
    """Store Salesforce contacts (email ``<id>@example.com``) and a verdict for each.

    Each contact consents to every activity unless ``consents`` gives its multi-select value.
    """
    import sqlalchemy as sa

    from sync_service.store.models import accounts, contacts, evaluations

    at = now or utcnow()
    with engine.begin() as conn:
        for account_id, ids in contacts_by_account.items():
            conn.execute(
                sa.insert(accounts),
                [{"source": "salesforce", "id": account_id, "name": account_id, "synced_at": at}],
            )
            conn.execute(
                sa.insert(contacts),
                [
                    {
                        "source": "salesforce",
                        "id": cid,
                        "account_id": account_id,
                        "email": f"{cid.lower()}@example.com",
                        "consent_types": (consents or {}).get(cid, EVERY_CONSENT),
                        "synced_at": at,
                    }
                    for cid in ids
                ],
            )
            conn.execute(
                sa.insert(evaluations),
                [
                    {
                        "entity_type": "contact",
                        "entity_id": cid,
                        "status": (statuses or {}).get(cid, status),
                        "eligible": (statuses or {}).get(cid, status) == "Eligible",
                        "reason": (statuses or {}).get(cid, status),
                        "evaluated_at": at,
                    }
                    for cid in ids
                ],
            )
