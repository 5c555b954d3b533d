"""One migrated store per test module, emptied before each test.

The writeback tests only touch rows, never the schema, so creating (and on PostgreSQL,
creating a database and migrating it) once per module keeps the suite fast on both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import metadata

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def _module_db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE", "sqlite") != "postgres":
        yield f"sqlite:///{Path(tmp_path_factory.mktemp('writeback')) / 'store.db'}"
        return
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"t_{uuid.uuid4().hex[:16]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
        pytest.skip(f"PostgreSQL not available: {reason}")
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def _module_engine(_module_db_url: str) -> Iterator[Engine]:
    eng = make_engine(_module_db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def engine(_module_engine: Engine) -> Engine:
    """The module's store, with every table emptied."""
    with _module_engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return _module_engine
