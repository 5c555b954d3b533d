"""The Ask API over real HTTP (uvicorn on a loopback port, requests as the client)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.api.tokens import create_token, revoke_token
from sync_service.mapping.asks import AskFields
from sync_service.mapping.loader import load_mappings
from sync_service.ops.runs import utcnow
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import advocacy_asks, ask_audit, writeback_outbox
from tests.api.support import REPO, make_state, seed_contacts, serving
from tests.store_seed import seed

A1 = "001000000000001AAA"
A2 = "001000000000002AAA"
C1 = "003000000000001AAA"
C2 = "003000000000002AAA"
C3 = "003000000000003AAA"
OUT = "003000000000009AAA"  # opted out


def fields() -> AskFields:
    found = AskFields.from_mapping(load_mappings(REPO / "mappings").salesforce)
    assert found is not None
    return found


def token(engine: Engine, name: str, role: str = "team", team: str | None = "Marketing") -> str:
    return create_token(engine, team=team, name=name, role=role, now=utcnow())[1]  # type: ignore[arg-type]


class Client:
    def __init__(self, base: str, tok: str | None) -> None:
        self.base = base
        self.s = requests.Session()
        if tok:
            self.s.headers["Authorization"] = f"Bearer {tok}"

    def post(self, path: str, body: Any) -> requests.Response:
        return self.s.post(self.base + path, json=body, timeout=30)

    def get(self, path: str) -> requests.Response:
        return self.s.get(self.base + path, timeout=30)


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    seed_contacts(engine, {A1: [C1, C2], A2: [C3, OUT]}, statuses={OUT: "Opted Out"})
    with serving(make_state(engine, tmp=tmp_path, fields=fields())) as base:
        yield base, engine


def ask_body(contact: str = C1, kind: str = "Webinar", **more: Any) -> dict[str, Any]:
    return {"contact_id": contact, "ask_type": kind, "requested_by": "jane", **more}


def test_every_status_code_of_the_ask_endpoints(api: tuple[str, Engine]) -> None:
    base, engine = api
    marketing = Client(base, token(engine, "mkt"))
    anonymous = Client(base, None)

    r = anonymous.post("/v1/asks/check", {"contact_id": C1, "ask_type": "Webinar"})
    assert r.status_code == 401
    assert r.json() == {
        "detail": "missing API token: send 'Authorization: Bearer <token>' "
        "(create one with sync-service api-token create)"
    }
    assert Client(base, "asg_wrong").get("/v1/me").status_code == 401

    r = marketing.post(
        "/v1/asks/check", {"email": f"{C1.lower()}@example.com", "ask_type": "Webinar"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["allowed"] is True
    assert body["status"] == "Eligible"
    assert body["contact_id"] == C1
    assert body["account_id"] == A1
    assert {c["id"] for c in body["caps"]} == {
        "reference_calls",
        "contact_quarter",
        "account_quarter",
    }

    r = marketing.post("/v1/asks", ask_body())
    assert r.status_code == 201
    ask_id = r.json()["id"]
    assert ask_id.startswith("ask-")
    assert r.json()["override"] is False

    r = marketing.post("/v1/asks", ask_body())  # the rest period now runs
    assert r.status_code == 409
    assert r.json()["detail"].startswith("not allowed: rest period after the ask on ")
    assert r.json()["allowed"] is False

    r = marketing.post("/v1/asks", ask_body(team="Sales"))
    assert r.status_code == 403
    assert r.json()["detail"] == "token 'mkt' acts for team 'Marketing', not 'Sales'"

    r = marketing.post("/v1/asks/check", {"email": "nobody@example.com", "ask_type": "Webinar"})
    assert r.status_code == 404
    assert "nobody" not in r.text  # an email is never echoed back
    r = marketing.post("/v1/asks", ask_body(contact="003000000000404AAA"))
    assert r.status_code == 404

    r = marketing.post("/v1/asks", {"contact_id": C1, "ask_type": "Webinar"})
    assert r.status_code == 422
    assert r.json() == {"detail": "requested_by: Field required"}
    r = marketing.post("/v1/asks/check", {"contact_id": C1, "email": "a@b.c", "ask_type": "x"})
    assert r.status_code == 422
    assert r.json()["detail"] == "give exactly one of contact_id or email"
    assert "\n" not in r.json()["detail"]

    with engine.connect() as conn:
        stored = conn.execute(sa.select(advocacy_asks).where(advocacy_asks.c.id == ask_id)).one()
        outbox = conn.execute(sa.select(writeback_outbox)).mappings().all()
        audit = conn.execute(sa.select(ask_audit.c.action, ask_audit.c.result)).all()
    assert stored.source == "api"
    assert stored.team == "Marketing"
    assert [(o["operation"], o["record_id"], o["state"]) for o in outbox] == [
        ("create", ask_id, "pending")
    ]
    assert outbox[0]["fields"]["Contact__c"] == C1
    assert outbox[0]["fields"]["Guard_Status__c"] == "Clear"
    assert ("ask", "logged") in audit
    assert ("ask", "refused") in audit
    assert ("check", "allowed") in audit


def test_an_override_logs_the_ask_and_audits_who_why_and_what_it_broke(
    api: tuple[str, Engine],
) -> None:
    base, engine = api
    admin = Client(base, token(engine, "root", role="admin", team=None))
    assert admin.post("/v1/asks", ask_body(team="Events")).status_code == 201
    r = admin.post(
        "/v1/asks", ask_body(team="Events", override_reason="the CEO asked for this one")
    )
    assert r.status_code == 201
    assert r.json()["override"] is True
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(ask_audit).where(ask_audit.c.result == "override"))
            .mappings()
            .one()
        )
        outbox = conn.execute(
            sa.select(writeback_outbox.c.fields).where(
                writeback_outbox.c.record_id == r.json()["id"]
            )
        ).scalar_one()
    assert row["requested_by"] == "jane"
    assert row["override_reason"] == "the CEO asked for this one"
    assert row["token_name"] == "root"
    assert row["reasons"][-1] == "broken: rest_period"
    assert outbox["Guard_Status__c"] == "Override"
    assert outbox["Guard_Reason__c"].startswith("override by jane: the CEO asked for this one")


def test_an_ask_for_a_deal_is_linked_to_its_opportunity_and_an_unknown_one_is_a_422(
    api: tuple[str, Engine],
) -> None:
    base, engine = api
    deal, gone = "006000000000001AAA", "006000000000002AAA"
    seed(
        engine,
        Entity.OPPORTUNITY,
        [{"id": deal, "account_id": A2}, {"id": gone, "account_id": A2, "deleted": True}],
    )
    sales = Client(base, token(engine, "sales", team="Sales"))

    for unknown in ("006000000000404AAA", gone):
        r = sales.post("/v1/asks", ask_body(kind="Reference Call", opportunity_id=unknown))
        assert r.status_code == 422
        assert r.json()["detail"] == (
            f"no opportunity {unknown} in the store "
            "(synced opportunities only; check the id or wait for the next sync)"
        )
    r = sales.post("/v1/asks", ask_body(kind="Reference Call", opportunity_id="not an id!"))
    assert r.status_code == 422
    assert "\n" not in r.json()["detail"]

    # the 15-character form names the same deal; the link is stored in the 18-character form
    r = sales.post("/v1/asks", ask_body(kind="Reference Call", opportunity_id=deal[:15]))
    assert r.status_code == 201, r.text
    assert r.json()["opportunity_id"] == deal
    ask_id = r.json()["id"]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(advocacy_asks).where(advocacy_asks.c.id == ask_id)).one()
        outbox = conn.execute(
            sa.select(writeback_outbox.c.fields).where(writeback_outbox.c.record_id == ask_id)
        ).scalar_one()
        others = conn.execute(
            sa.select(sa.func.count())
            .select_from(advocacy_asks)
            .where(advocacy_asks.c.id != ask_id)
        ).scalar_one()
    assert stored.opportunity_id == deal
    assert outbox["Opportunity__c"] == deal
    assert others == 0  # the 422s logged nothing

    r = sales.post("/v1/asks", ask_body(contact=C3, kind="Webinar"))  # no deal: no link
    assert r.status_code == 201
    assert r.json()["opportunity_id"] is None
    with engine.connect() as conn:
        fields_sent = conn.execute(
            sa.select(writeback_outbox.c.fields).where(
                writeback_outbox.c.record_id == r.json()["id"]
            )
        ).scalar_one()
    assert "Opportunity__c" not in fields_sent


def test_an_ask_type_without_consent_is_refused_and_an_override_audits_the_consent(
    engine: Engine, tmp_path: Path
) -> None:
    seed_contacts(engine, {A1: [C1, C2]}, consents={C2: "Reference Call"})
    with serving(make_state(engine, tmp=tmp_path, fields=fields())) as base:
        marketing = Client(base, token(engine, "mkt"))
        admin = Client(base, token(engine, "root", role="admin", team=None))
        why = "No consent for Case Study (needed for a Case Study ask)"

        r = marketing.post("/v1/asks/check", {"contact_id": C2, "ask_type": "case study"})
        assert r.status_code == 200
        assert r.json()["allowed"] is False
        assert r.json()["status"] == "Eligible"
        assert r.json()["reasons"] == [why]
        assert r.json()["next_available"] is None
        r = marketing.post("/v1/asks/check", {"contact_id": C2, "ask_type": "Reference Call"})
        assert r.json()["allowed"] is True
        # the same ask type for a contact who consented to it
        r = marketing.post("/v1/asks/check", {"contact_id": C1, "ask_type": "Case Study"})
        assert r.json()["allowed"] is True

        r = marketing.post("/v1/asks", ask_body(contact=C2, kind="Case Study"))
        assert r.status_code == 409
        assert r.json()["detail"] == f"not allowed: {why}"
        r = admin.post(
            "/v1/asks",
            ask_body(contact=C2, kind="Case Study", team="Marketing", override_reason="signed"),
        )
        assert r.status_code == 201
        assert r.json()["override"] is True
        ask_id = r.json()["id"]
    with engine.connect() as conn:
        audit = (
            conn.execute(sa.select(ask_audit).where(ask_audit.c.action == "ask")).mappings().all()
        )
        outbox = conn.execute(
            sa.select(writeback_outbox.c.fields).where(writeback_outbox.c.record_id == ask_id)
        ).scalar_one()
    assert [(a["result"], a["contact_id"]) for a in audit] == [("refused", C2), ("override", C2)]
    assert audit[1]["reasons"] == [why, "broken: consent"]
    assert audit[1]["override_reason"] == "signed"
    assert outbox["Guard_Status__c"] == "Override"
    assert outbox["Guard_Reason__c"].endswith("(breaks consent)")


def test_roles_viewer_reads_admin_needs_a_team_revoked_tokens_stop(
    api: tuple[str, Engine],
) -> None:
    base, engine = api
    viewer = Client(base, token(engine, "report", role="viewer", team=None))
    assert viewer.post("/v1/asks/check", {"contact_id": C3, "ask_type": "x"}).status_code == 200
    r = viewer.post("/v1/asks", ask_body(contact=C3, team="Sales"))
    assert r.status_code == 403
    assert "read-only" in r.json()["detail"]
    assert viewer.get("/v1/tokens").status_code == 403
    admin = Client(base, token(engine, "root", role="admin", team=None))
    assert admin.post("/v1/asks", ask_body(contact=C3)).status_code == 422
    assert [t["name"] for t in admin.get("/v1/tokens").json()] == ["report", "root"]
    assert viewer.get("/v1/me").json() == {"name": "report", "team": None, "role": "viewer"}
    revoke_token(engine, "report", utcnow())
    assert viewer.get("/v1/me").status_code == 401


def test_an_opted_out_contact_is_refused_with_its_status(api: tuple[str, Engine]) -> None:
    base, engine = api
    sales = Client(base, token(engine, "sales", team="Sales"))
    r = sales.post("/v1/asks", ask_body(contact=OUT))
    assert r.status_code == 409
    assert r.json()["status"] == "Opted Out"
    assert r.json()["next_available"] is None


def test_the_rate_limit_answers_429_with_retry_after(engine: Engine, tmp_path: Path) -> None:
    seed_contacts(engine, {A1: [C1]})
    with serving(make_state(engine, tmp=tmp_path, rate=0.5, burst=2)) as base:
        c = Client(base, token(engine, "slow"))
        codes = [c.get("/v1/me").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.get("/v1/me")
        assert r.headers["Retry-After"] == "2"
        assert "rate limit of token 'slow'" in r.json()["detail"]


def _race(engine: Engine, tmp_path: Path) -> None:
    """20 clients ask for the same two contacts at once: caps hold, nothing lost or doubled."""
    seed_contacts(engine, {A1: [C1, C2]})
    with serving(make_state(engine, tmp=tmp_path, fields=fields())) as base:
        tok = token(engine, "racer", role="admin", team=None)
        results: list[tuple[str, int, str | None]] = []
        lock = threading.Lock()
        go = threading.Barrier(20)

        def client(i: int) -> None:
            c = Client(base, tok)
            contact = (C1, C2)[i % 2]
            go.wait()
            for n in range(3):
                if n == 1:
                    c.post("/v1/asks/check", {"contact_id": contact, "ask_type": "Webinar"})
                r = c.post("/v1/asks", ask_body(contact=contact, team="Events"))
                with lock:
                    results.append((contact, r.status_code, r.json().get("id")))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    created = [r for r in results if r[1] == 201]
    assert sorted(r[0] for r in created) == [C1, C2]  # the rest period: one ask each
    assert all(r[1] == 409 for r in results if r[1] != 201)
    assert len(results) == 60
    with engine.connect() as conn:
        stored = conn.execute(sa.select(advocacy_asks.c.id, advocacy_asks.c.contact_id)).all()
        creates = conn.execute(
            sa.select(sa.func.count()).where(writeback_outbox.c.operation == "create")
        ).scalar_one()
        audited = conn.execute(
            sa.select(sa.func.count()).where(ask_audit.c.action == "ask")
        ).scalar_one()
    assert sorted(i for i, _ in stored) == sorted(r[2] for r in created)
    assert creates == 2
    assert audited == 60


def test_racing_asks_never_break_a_cap(engine: Engine, tmp_path: Path) -> None:
    _race(engine, tmp_path)


def test_racing_asks_never_break_a_cap_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    try:
        _race(engine, tmp_path)
    finally:
        engine.dispose()


def test_the_advocate_view_shows_verdict_caps_and_the_asks_that_count(
    api: tuple[str, Engine],
) -> None:
    base, engine = api
    viewer = Client(base, token(engine, "report", role="viewer", team=None))
    team = Client(base, token(engine, "mkt"))
    ask_id = team.post("/v1/asks", ask_body()).json()["id"]

    contact = viewer.get(f"/v1/advocates/{C1}")
    assert contact.status_code == 200
    body = contact.json()
    assert body["entity_type"] == "contact"
    assert body["status"] == "Eligible"  # the stored verdict; the caps are recounted now
    assert [a["id"] for a in body["asks"]] == [ask_id]
    caps = {c["id"]: c["count"] for c in body["caps"]}
    assert caps == {"reference_calls": 0, "contact_quarter": 1, "account_quarter": 1}
    assert body["explain"]["entity_type"] == "contact"

    account = viewer.get(f"/v1/advocates/{A1}").json()
    assert account["entity_type"] == "account"
    assert {c["id"]: c["count"] for c in account["caps"]} == {"account_quarter": 1}
    assert [a["id"] for a in account["asks"]] == [ask_id]

    assert viewer.get("/v1/advocates/003000000000404AAA").status_code == 404
    assert Client(base, None).get(f"/v1/advocates/{C1}").status_code == 401
