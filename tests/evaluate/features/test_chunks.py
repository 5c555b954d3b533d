"""Keyset chunking: every contact once, each with its account in its own chunk."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from canonical.model import Entity
from rules import load_policy
from sync_service.evaluate.features.chunks import iter_feature_chunks
from sync_service.store.models import eval_scope
from tests.evaluate.features.helpers import (
    NOW,
    ROOT,
    d,
)
from tests.store_seed import seed


def _org(engine: Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """30 accounts, 250 contacts, every seventh without an account."""
    accounts = [{"id": f"001{i:04d}", "customer_since": d(200)} for i in range(30)]
    contacts = [
        {"id": f"003{i:04d}", "account_id": f"001{i % 30:04d}" if i % 7 else None, "opted_in": True}
        for i in range(250)
    ]
    seed(engine, Entity.ACCOUNT, accounts)
    seed(engine, Entity.CONTACT, contacts)
    return accounts, contacts


def test_chunks_cover_every_contact_once(engine: Engine) -> None:
    accounts, contacts = _org(engine)
    p = load_policy(ROOT / "config" / "rules.yaml")
    with engine.connect() as conn:
        chunks = list(iter_feature_chunks(conn, p, NOW, chunk_size=40))
    ids = [i for ch in chunks for i in ch.contacts["contact_id"].to_list()]
    assert sorted(ids) == sorted(c["id"] for c in contacts)
    assert len(chunks) > 5
    acc_ids = [i for ch in chunks for i in ch.accounts["account_id"].to_list()]
    assert sorted(acc_ids) == sorted(a["id"] for a in accounts)
    for ch in chunks:  # a contact's account is in its own chunk
        linked = ch.contacts.filter(pl.col("account_id").is_not_null())
        assert set(linked["account_id"]) <= set(ch.accounts["account_id"])
        assert linked["tenure_days"].to_list() == [200] * linked.height


def test_scoped_chunks_cover_every_contact_of_the_scope_once(engine: Engine) -> None:
    accounts, contacts = _org(engine)
    # every third account, and two contacts without one
    scope = [a["id"] for a in accounts[::3]] + ["0030000", "0030007"]
    p = load_policy(ROOT / "config" / "rules.yaml")
    with engine.begin() as conn:
        conn.execute(eval_scope.insert(), [{"id": i} for i in scope])
        chunks = list(iter_feature_chunks(conn, p, NOW, chunk_size=7, scoped=True))
    ids = [i for ch in chunks for i in ch.contacts["contact_id"].to_list()]
    expected = [c["id"] for c in contacts if (c["account_id"] or c["id"]) in scope]
    assert sorted(ids) == sorted(expected)
    assert len(chunks) > 5  # several ranges of the scope, each of about 7 contacts
    acc_ids = [i for ch in chunks for i in ch.accounts["account_id"].to_list()]
    assert sorted(acc_ids) == sorted(accounts[::3][i]["id"] for i in range(10))
