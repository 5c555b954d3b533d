"""``POST /v1/privacy/forget`` over real HTTP: admin only, the erasure done, audited as via API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.ops.locks import job_lock
from sync_service.store.models import contacts, privacy_erasures
from tests.api.support import make_state, serving
from tests.api.test_asks_api import Client, token
from tests.privacy.people import EMAIL, PERSONAL, SF_ID, seed_person, text_of_every_row

KEY = b"k" * 32
URL = "/v1/privacy/forget"


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[str]:
    seed_person(engine)
    state = replace(make_state(engine, tmp=tmp_path), privacy_key=lambda: KEY)
    with serving(state) as base:
        yield base


def leftovers(engine: Engine) -> set[tuple[str, str]]:
    return {
        (name, term)
        for name, rows in text_of_every_row(engine).items()
        for row in rows
        for term in PERSONAL
        if term.lower() in row.lower()
    }


def erasures(engine: Engine) -> list[sa.Row[tuple[str, str, str]]]:
    with engine.connect() as conn:
        q = sa.select(
            privacy_erasures.c.requested_by, privacy_erasures.c.reason, privacy_erasures.c.via
        )
        return list(conn.execute(q.order_by(privacy_erasures.c.id)).all())


def test_an_admin_erases_a_person_and_the_erasure_is_audited(api: str, engine: Engine) -> None:
    assert leftovers(engine)  # the person is there before
    r = Client(api, token(engine, "dpo", role="admin", team=None)).post(
        URL, {"email": EMAIL.upper(), "reason": "DSR-118"}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["found"] is True
    assert out["tables"]["contacts"] == 2  # the Salesforce contact and the Gainsight person
    assert out["tables"]["nps_responses"] == 2
    assert out["tombstones"] > 0
    assert EMAIL not in r.text
    assert leftovers(engine) == set()
    with engine.connect() as conn:
        assert conn.execute(sa.select(contacts.c.id).where(contacts.c.id == SF_ID)).scalar()
    assert [tuple(row) for row in erasures(engine)] == [("dpo", "DSR-118", "api")]


def test_a_person_not_in_the_store_is_tombstoned_all_the_same(api: str, engine: Engine) -> None:
    admin = Client(api, token(engine, "dpo", role="admin", team=None))
    r = admin.post(URL, {"contact_id": "003000000000077AAA", "reason": "DSR-119"})
    assert r.status_code == 200, r.text
    assert r.json()["found"] is False
    assert r.json()["tombstones"] > 0
    assert leftovers(engine)  # nobody else was touched


def test_only_an_admin_token_may_erase(api: str, engine: Engine) -> None:
    body = {"email": EMAIL, "reason": "DSR-118"}
    r = Client(api, None).post(URL, body)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    team = Client(api, token(engine, "mkt"))
    viewer = Client(api, token(engine, "ro", role="viewer", team=None))
    for client, name in ((team, "mkt"), (viewer, "ro")):
        r = client.post(URL, body)
        assert r.status_code == 403
        assert r.json() == {"detail": f"token '{name}' is not an admin token"}
    assert erasures(engine) == []
    assert (("contacts", EMAIL)) in leftovers(engine)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"reason": "DSR-1"}, "give exactly one of contact_id or email"),
        ({"email": EMAIL, "contact_id": SF_ID, "reason": "x"}, "give exactly one of"),
        ({"email": "not-an-address", "reason": "x"}, "email: String should match pattern"),
        ({"email": EMAIL}, "reason: Field required"),
        ({"email": EMAIL, "reason": "   "}, "reason: String should have at least 1 character"),
        ({"email": EMAIL, "reason": "x", "by": "someone"}, "by: Extra inputs"),
        ({"contact_id": "003 000 000 000 01", "reason": "x"}, "contact_id must be a CRM record"),
    ],
)
def test_a_malformed_body_is_422_and_changes_nothing(
    api: str, engine: Engine, body: dict[str, str], detail: str
) -> None:
    r = Client(api, token(engine, "dpo", role="admin", team=None)).post(URL, body)
    assert r.status_code == 422
    assert detail in r.json()["detail"]
    assert EMAIL not in r.text  # never echoed
    assert erasures(engine) == []


def test_an_erasure_while_a_sync_runs_is_409_and_changes_nothing(api: str, engine: Engine) -> None:
    admin = Client(api, token(engine, "dpo", role="admin", team=None))
    held, release = threading.Event(), threading.Event()

    def sync() -> None:
        with job_lock(engine, "stage.salesforce", close_abandoned=False):
            held.set()
            release.wait(10)

    t = threading.Thread(target=sync)
    t.start()
    assert held.wait(10)
    try:
        r = admin.post(URL, {"email": EMAIL, "reason": "DSR-118"})
    finally:
        release.set()
        t.join()
    assert r.status_code == 409
    assert "salesforce sync is running" in r.json()["detail"]
    assert erasures(engine) == []
    assert ("contacts", EMAIL) in leftovers(engine)
    assert admin.post(URL, {"email": EMAIL, "reason": "DSR-118"}).status_code == 200


def test_without_a_privacy_key_the_endpoint_is_unavailable(engine: Engine, tmp_path: Path) -> None:
    with serving(make_state(engine, tmp=tmp_path)) as base:
        r = Client(base, token(engine, "dpo", role="admin", team=None)).post(
            URL, {"email": EMAIL, "reason": "x"}
        )
    assert r.status_code == 503
    assert erasures(engine) == []
