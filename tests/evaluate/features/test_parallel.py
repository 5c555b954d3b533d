"""The thread-parallel reader: every chunk, its errors raised, the same features as one reader."""

from __future__ import annotations

import random
import threading
from typing import Any

import polars as pl
import pytest
from sqlalchemy.engine import Engine

from canonical.model import Entity
from rules import load_policy
from sync_service.evaluate.features import chunks
from sync_service.evaluate.features.chunks import compute_features
from sync_service.evaluate.features.parallel import stream_feature_chunks
from sync_service.evaluate.features.run_tables import RunTables
from tests.evaluate.features.helpers import (
    NOW,
    ROOT,
    d,
    policy,
    ts,
)
from tests.store_seed import seed


@pytest.mark.parametrize("workers", [1, 2])
def test_the_streamed_reader_yields_every_chunk_and_raises_its_errors(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    seed(engine, Entity.ACCOUNT, [{"id": f"001{i}"} for i in range(5)])
    seed(engine, Entity.CONTACT, [{"id": f"003{i}", "account_id": f"001{i}"} for i in range(5)])
    p = load_policy(ROOT / "config" / "rules.yaml")
    got_chunks = list(stream_feature_chunks(engine, p, NOW, chunk_size=2, workers=workers))
    assert sorted(i for c in got_chunks for i in c.contacts["contact_id"]) == [
        f"003{i}" for i in range(5)
    ]

    real = chunks.range_chunk

    def broken(conn: Any, q: Any, lo: str | None, hi: str | None) -> Any:
        if lo is not None:  # every range but the first
            raise RuntimeError("the database went away")
        return real(conn, q, lo, hi)

    monkeypatch.setattr(chunks, "range_chunk", broken)  # one reader and the parallel ones
    got: list[Any] = []

    def consume() -> None:
        got.extend(stream_feature_chunks(engine, p, NOW, chunk_size=2, workers=workers))

    with pytest.raises(RuntimeError, match="went away"):
        consume()
    if workers == 1:
        assert len(got) == 1
    else:
        # the readers run side by side from the start: the first range's chunk is handed over
        # before the error only if its reader is the one asked first
        assert len(got) <= 1


def test_a_failed_prepare_is_raised_and_every_connection_returned(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:

    seed(engine, Entity.ACCOUNT, [{"id": f"001{i}"} for i in range(5)])
    seed(engine, Entity.CONTACT, [{"id": f"003{i}", "account_id": f"001{i}"} for i in range(5)])

    def broken(self: Any, table: Any, stray: Any, conn: Any) -> None:
        raise RuntimeError("disk full while preparing")

    monkeypatch.setattr(RunTables, "_fill_strays", broken)
    p = load_policy(ROOT / "config" / "rules.yaml")
    with pytest.raises(RuntimeError, match="disk full"):
        list(stream_feature_chunks(engine, p, NOW, chunk_size=2, workers=2))
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name.startswith("features-")]


@pytest.mark.parametrize("chunk_size", [1, 3, 100])
def test_parallel_readers_compute_what_one_reader_does(engine: Engine, chunk_size: int) -> None:
    # strays (asks and answers filed under another account or none), Gainsight opt flags,
    # contacts without an account: the readers share prepare()'s tables through one connection
    rnd = random.Random(7)
    accounts_ = [f"001{i:02d}" for i in range(12)]
    seed(engine, Entity.ACCOUNT, [{"id": a, "customer_since": d(400)} for a in accounts_])
    people = [
        {"id": f"003{i:02d}", "account_id": rnd.choice([*accounts_, None]), "opted_in": True}
        for i in range(40)
    ]
    people += [
        {"source": "gainsight", "id": f"G{i}", "sf_contact_id": f"003{i:02d}", "opted_out": True}
        for i in range(0, 40, 7)
    ]
    seed(engine, Entity.CONTACT, people)
    ids = [f"003{i:02d}" for i in range(40)]
    seed(
        engine,
        Entity.ASK,
        [
            {
                "id": f"a{i}",
                "contact_id": rnd.choice(ids),
                "account_id": rnd.choice([*accounts_, None]),
                "ask_type": "Reference Call",
                "requested_date": d(rnd.randrange(0, 200)),
            }
            for i in range(120)
        ],
    )
    seed(
        engine,
        Entity.NPS_RESPONSE,
        [
            {
                "id": f"n{i}",
                "contact_id": rnd.choice(ids),
                "account_id": rnd.choice([*accounts_, None]),
                "score": rnd.randrange(11),
                "responded_at": ts(rnd.randrange(0, 300)),
            }
            for i in range(80)
        ],
    )
    p = policy()
    one = compute_features(engine, p, NOW).sort("contact_id")
    got_chunks = list(stream_feature_chunks(engine, p, NOW, chunk_size=chunk_size, workers=2))
    two = pl.concat([c.contacts for c in got_chunks]).sort("contact_id")
    assert two["contact_id"].to_list() == sorted(ids)
    assert two.equals(one)
