"""Identity marks: the ingest marks what linking must relink; the evaluation ignores them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import Entity
from connectors.memory import MemoryConnector
from sync_service.store.models import eval_marks, eval_scope
from sync_service.sync import changes
from tests.store_seed import seed
from tests.sync.test_ingest import opts, rec, sync

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def identity_marks(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(eval_marks.c.entity, eval_marks.c.id)
            .where(eval_marks.c.entity.startswith(changes.ID))
            .order_by(eval_marks.c.seq)
        )
        return [(r.entity, r.id) for r in rows]


def test_salesforce_changes_get_identity_marks_once_gainsight_rows_are_stored(engine: Engine):
    crm = MemoryConnector(records={"Contact": [rec(i, i) for i in range(3)]})
    sync(engine, crm)  # a first load: nothing to link to yet, so no full linking asked
    crm.records["Contact"] = [rec(0, 100, AccountId="001B"), rec(1, 101, FirstName="x")]
    sync(engine, crm)
    assert identity_marks(engine) == []
    seed(engine, Entity.CONTACT, [{"source": "gainsight", "id": "P1", "email": "a@b.c"}])
    crm.records["Contact"] = [rec(0, 200, AccountId="001C"), rec(1, 201, FirstName="y")]
    sync(engine, crm)
    # the account moved (linking reads it); a new first name is nothing to linking
    assert identity_marks(engine) == [("id:contacts", f"003{0:015d}")]


def test_a_full_read_asks_for_a_full_linking_once_gainsight_rows_are_stored(engine: Engine):
    seed(engine, Entity.CONTACT, [{"source": "gainsight", "id": "P1", "email": "a@b.c"}])
    sync(engine, MemoryConnector(records={"Contact": [rec(0, 0)]}), opts(full=True))
    assert changes.ID_FULL in {e for e, _ in identity_marks(engine)}


def test_the_evaluation_neither_reads_nor_consumes_identity_marks(engine: Engine):
    seed(engine, Entity.ACCOUNT, [{"id": "001A"}, {"id": "001B"}])
    seed(engine, Entity.CONTACT, [{"id": "003A", "account_id": "001A"}])
    marks = [
        {"source": "salesforce", "entity": "contacts", "id": "003A", "marked_at": NOW},
        # an identity mark of a row filed under 001B: not the evaluation's to follow
        {"source": "salesforce", "entity": "id:contacts", "id": "003A", "marked_at": NOW},
        {"source": "salesforce", "entity": "id:accounts", "id": "001B", "marked_at": NOW},
    ]
    marks[1]["account_id"] = "001B"
    assert changes.input_marks(marks) == 1
    with engine.begin() as conn:
        changes.write_marks(conn, [{"account_id": None, **m} for m in marks])
        upto = changes.last_seq(conn)
        changes.fill_scope(conn, upto, NOW.date())
        assert set(conn.execute(sa.select(eval_scope.c.id)).scalars()) == {"001A"}
        changes.consume(conn, upto)
    assert identity_marks(engine) == [("id:contacts", "003A"), ("id:accounts", "001B")]
