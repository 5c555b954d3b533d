"""Erasure end to end: sync the sandbox, forget a person, and look for them everywhere.

On SQLite the store file and its write-ahead log are read as raw bytes; on PostgreSQL every
column of every table is read as text. Then two more cycles run with the person still in
Salesforce and Gainsight (touched, so they are read again) and a new NPS answer from them: none
of their personal data comes back, the counts stay right, and the CRM is told once that the
person is Opted Out, "Erased on request".
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sync_service.context import AppContext
from sync_service.ops.runs import utcnow
from sync_service.pipeline import run_cycle
from sync_service.privacy.export import export_subject
from sync_service.privacy.forget import forget
from sync_service.store.models import contacts, evaluations, nps_responses, writeback_log
from tests.privacy.people import text_of_every_row

REPO = Path(__file__).resolve().parents[2]
EMAIL = "zebedee.quartermaine@example.org"
FIRST, LAST = "Zebedee", "Quartermaine"
COMMENT = "Kubernetes pipelines saved our quarter"
NEW_COMMENT = "Still a fan of the Xylophone dashboards"
TERMS = (EMAIL, FIRST, LAST, COMMENT, NEW_COMMENT, "Xylophone")


@pytest.fixture
def store_url(db_url: str) -> str:
    # This run's backend (TEST_DATABASE). CI runs the suite once per backend, so parametrising
    # over both ran each backend's erasure twice, identically.
    return db_url


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(accounts=20, seed=13) as sandbox:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_bundle)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        yield sandbox


def context(sb: Sandbox, url: str, tmp_path: Path) -> AppContext:
    settings = tmp_path / "settings.yaml"
    settings.write_text("{}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    env.update(sb.env("client_credentials"))
    env.update(
        {
            "DATABASE_URL": url,
            "SYNC_CONFIG": str(settings),
            "SYNC_MAPPINGS_DIR": str(REPO / "mappings"),
            "SYNC_RULES_FILE": str(REPO / "config" / "rules.yaml"),
            "SYNC_PRIVACY_KEY": "e2e-test-key-0123456789abcdef",
        }
    )
    return AppContext(config_path=str(settings), env=env)


def pick_person(sb: Sandbox) -> tuple[str, str, list[str]]:
    """A Salesforce contact with a linked Gainsight person who answered a survey; renamed."""
    answers: dict[str, list[str]] = {}
    for a in sb.records("SurveyUserAnswer"):
        if a.get("PersonId"):
            answers.setdefault(a["PersonId"], []).append(a["Gsid"])
    for person in sb.records("Person"):
        cid = person.get("SfdcContactId")
        if cid and person["Gsid"] in answers and sb.record("Contact", cid):
            sb.update("Contact", cid, {"FirstName": FIRST, "LastName": LAST, "Email": EMAIL})
            sb.update(
                "Person", person["Gsid"], {"FirstName": FIRST, "LastName": LAST, "Email": EMAIL}
            )
            for gsid in answers[person["Gsid"]]:
                sb.update(
                    "SurveyUserAnswer", gsid, {"ParticipantEmail": EMAIL, "Comments": COMMENT}
                )
            return cid, person["Gsid"], answers[person["Gsid"]]
    raise AssertionError("the sandbox has no linked person with answers")


def raw_store_bytes(url: str) -> bytes:
    path = Path(sa.make_url(url).database or "")
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def leftovers(ctx: AppContext, url: str) -> list[str]:
    """Where the person's data is still found: raw bytes (SQLite) and every column as text."""
    found: list[str] = []
    if url.startswith("sqlite"):
        raw = raw_store_bytes(url).lower()
        found += [f"bytes:{t}" for t in TERMS if t.lower().encode() in raw]
    for table, rows in text_of_every_row(ctx.engine).items():
        for row in rows:
            found += [f"{table}:{t}" for t in TERMS if t.lower() in row.lower()]
    return found


def count(ctx: AppContext, table: sa.Table, **where: Any) -> int:
    with ctx.engine.connect() as conn:
        stmt = sa.select(sa.func.count()).select_from(table)
        for col, value in where.items():
            stmt = stmt.where(table.c[col] == value)
        return int(conn.execute(stmt).scalar_one())


def test_an_erased_person_leaves_no_trace_and_never_comes_back(
    sb: Sandbox, store_url: str, tmp_path: Path
) -> None:
    contact_id, person_id, _ = pick_person(sb)
    ctx = context(sb, store_url, tmp_path)
    try:
        runs = run_cycle(ctx)
        assert [r.status for r in runs] == ["success"] * 4, [r.error for r in runs]
        assert leftovers(ctx, store_url)  # the person is there before the erasure

        result = forget(
            ctx.engine,
            ctx.privacy_key(),
            email=EMAIL.upper(),
            reason="DSR-2026-118",
            requested_by="privacy-officer",
            now=utcnow(),
        )
        assert result.tables["contacts"] == 2  # the Salesforce contact and the Gainsight person
        assert leftovers(ctx, store_url) == []
        if store_url.startswith("sqlite"):
            wal = Path(f"{sa.make_url(store_url).database}-wal")
            assert not wal.exists() or wal.stat().st_size == 0

        # Cycle 1: the person is still in both systems and touched there; a new answer arrives.
        sb.update("Contact", contact_id, {"Title": "Chief Platform Officer"})
        sb.update("Person", person_id, {"LastName": LAST})
        when = (utcnow() - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        new_answer = sb.insert(
            "SurveyUserAnswer",
            {
                "PersonId": person_id,
                "ParticipantEmail": EMAIL,
                "NPSScore": 10,
                "ResponseDate": when,
                "Comments": NEW_COMMENT,
            },
        )
        runs = run_cycle(ctx)
        assert [r.status for r in runs] == ["success"] * 4, [r.error for r in runs]
        # Cycle 2: a full re-read of everything.
        runs = run_cycle(ctx, full=True)
        assert [r.status for r in runs] == ["success"] * 4, [r.error for r in runs]
        ctx.engine.dispose()  # every connection closed: what is on disk is all there is
        assert leftovers(ctx, store_url) == []

        # Counts stay right: every record is there, only stripped.
        assert count(ctx, contacts, source="salesforce") == sb.count(
            "Contact", include_deleted=True
        )
        assert count(ctx, contacts, source="gainsight") == sb.count("Person")
        assert count(ctx, nps_responses) == sb.count("SurveyUserAnswer")
        assert count(ctx, nps_responses, contact_id=contact_id) >= 2
        assert count(ctx, evaluations, entity_type="contact") == sb.count("Contact")
        with ctx.engine.connect() as conn:
            answer = (
                conn.execute(sa.select(nps_responses).where(nps_responses.c.id == new_answer))
                .mappings()
                .one()
            )
        assert (answer["score"], answer["email"], answer["contact_id"]) == (10, None, contact_id)

        # The CRM was told once: Opted Out, "Erased on request".
        record = sb.record("Contact", contact_id)
        assert record is not None
        assert record["Advocate_Status__c"] == "Opted Out"
        assert record["Advocate_Reason__c"] == "Erased on request"
        with ctx.engine.connect() as conn:
            written = (
                conn.execute(
                    sa.select(writeback_log.c.new_value).where(
                        writeback_log.c.record_id == contact_id,
                        writeback_log.c.field == "Advocate_Status__c",
                    )
                )
                .scalars()
                .all()
            )
        assert written.count("Opted Out") == 1  # once, in three cycles

        exported = export_subject(ctx.engine, ctx.privacy_key, contact=contact_id, now=utcnow())
        assert exported["erased"]
        assert exported["counts"]["contacts"] == 2
    finally:
        ctx.close()
