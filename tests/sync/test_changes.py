"""Change marks: the ingest marks what changed, in the rows' transaction; an echo marks nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from connectors.memory import MemoryConnector
from sync_service.ops.runs import run_record
from sync_service.store.models import eval_marks, eval_scope, evaluations
from sync_service.sync import changes
from sync_service.sync.ingest import sync_source
from tests.fakes import FakeContactMapping
from tests.store_seed import seed
from tests.sync.test_ingest import T0, opts, rec, sync

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def marks(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        return [
            (r.entity, r.id, r.account_id)
            for r in conn.execute(sa.select(eval_marks).order_by(eval_marks.c.seq))
        ]


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(eval_marks.delete())


def test_a_first_load_asks_for_a_full_evaluation(engine: Engine):
    sync(engine, MemoryConnector(records={"Contact": [rec(i, i) for i in range(3)]}))
    assert {m[0] for m in marks(engine)} == {changes.FULL, changes.CRM_FULL}


def test_the_echo_of_our_own_writeback_marks_nothing(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(3)]})
    sync(engine, crm)
    clear(engine)
    # the writeback updated the records: Salesforce moved SystemModstamp, nothing else
    crm.records["Contact"] = [rec(i, 100 + i) for i in range(3)]
    sync(engine, crm)
    assert marks(engine) == []
    with engine.connect() as conn:
        assert changes.last_seq(conn) == 0


def test_a_changed_value_marks_the_row_and_a_move_marks_the_old_account(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(3)]})
    sync(engine, crm)
    clear(engine)
    crm.records["Contact"] = [
        rec(0, 100, FirstName="renamed"),
        rec(1, 101, AccountId="001B"),
        rec(2, 102),
        rec(3, 103),  # new
    ]
    sync(engine, crm)
    assert sorted(marks(engine)) == [
        ("contacts", f"003{0:015d}", None),
        ("contacts", f"003{1:015d}", "001A"),
        ("contacts", f"003{3:015d}", None),
    ]


def test_marks_commit_with_their_rows_so_a_crash_loses_none(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(2)]})
    sync(engine, crm)
    clear(engine)
    crm.records["Contact"] = [rec(i, 100 + i, FirstName=f"x{i}") for i in range(10)]
    crm.batch_size = 3
    crm.fail_after_batches = 2
    with run_record(engine, "salesforce") as run, pytest.raises(RuntimeError):
        sync_source(engine, crm, [FakeContactMapping()], run, opts())
    # the two committed batches' rows are each marked; nothing of the lost batch is
    assert sorted(m[1] for m in marks(engine)) == [f"003{i:015d}" for i in range(6)]


def test_the_scope_reaches_accounts_of_marked_rows_and_verdicts_due_today(engine: Engine):
    seed(engine, Entity.ACCOUNT, [{"id": a} for a in ("001A", "001B", "001C", "001D")])
    seed(
        engine,
        Entity.CONTACT,
        [
            {"id": "003A", "account_id": "001A"},
            {"id": "003N", "account_id": None},
            {"id": "003D", "account_id": "001D"},
        ],
    )
    seed(engine, Entity.NPS_RESPONSE, [{"id": "n1", "contact_id": "003A", "account_id": "001C"}])
    with engine.begin() as conn:
        changes.write_marks(
            conn,
            [
                {"source": "salesforce", "entity": e, "id": i, "account_id": a, "marked_at": NOW}
                for e, i, a in (
                    ("contacts", "003N", None),
                    ("nps_responses", "n1", None),
                    ("contacts", "003A", "001B"),
                )
            ],
        )
        conn.execute(
            evaluations.insert(),
            [
                {
                    "entity_type": "contact",
                    "entity_id": "003D",
                    "status": "Fatigued",
                    "eligible": False,
                    "evaluated_at": NOW,
                    "valid_until": date(2026, 11, 23),
                }
            ],
        )
        upto = changes.last_seq(conn)
        changes.fill_scope(conn, upto, NOW.date())
        scope = set(conn.execute(sa.select(eval_scope.c.id)).scalars())
        # tomorrow's verdicts are not due yet
        changes.fill_scope(conn, upto, NOW.date() - timedelta(days=1))
        before = set(conn.execute(sa.select(eval_scope.c.id)).scalars())
    assert scope == {"003N", "001A", "001B", "001C", "001D"}
    assert before == {"003N", "001A", "001B", "001C"}


def test_timestamps_compare_as_instants_whatever_their_zone():
    aware = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert changes._plain(aware) == changes._plain(aware.replace(tzinfo=None))
    assert changes._plain({"a": 1, "_crm": {"x": 1}}) == changes._plain({"a": 1})
    assert T0.tzinfo is UTC
