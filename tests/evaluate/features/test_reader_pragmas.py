"""Twin test: the readers' SQLite page cache (speed path) changes no feature, and is put back."""

from __future__ import annotations

import polars as pl
import pytest
from sqlalchemy.engine import Engine

from canonical.model import Entity
from canonical.speed_paths import SPEED_PATHS_OFF
from sync_service.evaluate.features.parallel import stream_feature_chunks
from sync_service.evaluate.features.reader_pragmas import READER_CACHE_KIB, reader_pragmas
from sync_service.store.engine import SQLITE_CACHE_KIB, make_engine
from tests.evaluate.features.helpers import NOW, policy, seed_world
from tests.store_seed import seed


def _features(engine: Engine) -> pl.DataFrame:
    chunks = stream_feature_chunks(engine, policy(), NOW, chunk_size=2, workers=2)
    return pl.concat([c.contacts for c in chunks]).sort("contact_id")


def test_features_are_the_same_with_and_without_the_reader_pragmas(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_world(engine)
    seed(engine, Entity.CONTACT, [{"id": f"004{i}", "account_id": "001B"} for i in range(5)])
    fast = _features(engine)
    monkeypatch.setenv(SPEED_PATHS_OFF, "reader_pragmas")
    plain = _features(engine)
    assert fast.height == 9
    assert fast.equals(plain)


@pytest.mark.parametrize(
    ("enabled", "inside"), [(True, READER_CACHE_KIB), (False, SQLITE_CACHE_KIB)]
)
def test_the_small_cache_is_used_while_reading_and_the_usual_one_after(
    sqlite_url: str, enabled: bool, inside: int
) -> None:
    def cache_kib() -> int:
        return -int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())

    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        with reader_pragmas(conn, enabled=enabled):
            assert cache_kib() == inside
        assert cache_kib() == SQLITE_CACHE_KIB
    engine.dispose()
