"""The documented PostgreSQL roles (README: Privacy): the service's role migrates and runs
without superuser; the report role reads verdicts but no personal column and writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sync_service.store.engine import make_engine, upgrade
from tests.conftest import PG_ADMIN_URL

#: What the README tells a DBA to run, with the names filled in (as the database's owner).
REPORT_GRANTS = """
GRANT USAGE ON SCHEMA public TO {report};
GRANT SELECT ON evaluations, evaluation_history, runs, accounts, opportunities TO {report};
GRANT SELECT (source, id, account_id, opted_in, opted_out, deleted, synced_at)
    ON contacts TO {report};
GRANT SELECT (source, id, account_id, contact_id, score, responded_at, deleted)
    ON nps_responses TO {report};
"""


@pytest.fixture
def roles(pg_url: str) -> Iterator[tuple[str, str, str]]:
    suffix = uuid.uuid4().hex[:8]
    service, report = f"advocate_sync_{suffix}", f"advocate_report_{suffix}"
    db = sa.make_url(pg_url).database
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {service} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"))
        conn.execute(sa.text(f"CREATE ROLE {report} LOGIN NOSUPERUSER"))
        conn.execute(sa.text(f'ALTER DATABASE "{db}" OWNER TO {service}'))
        conn.execute(sa.text(f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC'))
        conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{db}" TO {report}'))
    try:
        yield pg_url, service, report
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {report}"))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {service}"))
        admin.dispose()


def test_the_service_role_migrates_without_superuser_and_the_report_role_only_reads(
    roles: tuple[str, str, str],
):
    url, service, report = roles
    as_service = make_engine(sa.make_url(url).set(username=service).render_as_string(False))
    upgrade(as_service)  # no superuser, no extension, no CREATE ROLE
    with as_service.begin() as conn:
        conn.execute(sa.text(REPORT_GRANTS.format(report=report)))
        conn.execute(
            sa.text(
                "INSERT INTO contacts (source, id, email, deleted, synced_at) "
                "VALUES ('salesforce', '003A', 'a@b.io', false, now())"
            )
        )
    as_service.dispose()
    as_report = make_engine(sa.make_url(url).set(username=report).render_as_string(False))
    with as_report.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM evaluations")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(id) FROM contacts")).scalar() == 1
        for denied in (
            "SELECT email FROM contacts",
            "SELECT * FROM privacy_tombstones",
            "SELECT * FROM quarantine",
            "DELETE FROM evaluations",
        ):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.execute(sa.text(denied))
            conn.rollback()
    as_report.dispose()
