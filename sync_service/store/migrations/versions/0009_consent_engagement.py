"""consent per activity on contacts; engagement and consent results on evaluations

Revision ID: 0009_consent_engagement
Revises: 0008_stream_completeness
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_consent_engagement"
down_revision = "0008_stream_completeness"
branch_labels = None
depends_on = None


# The features read these columns by account range: the covering indexes (0004) take them
# in, so the range is still served from the index alone.
_COVER_BEFORE = {
    "contacts": ["account_id", "id", "source", "deleted", "opted_in", "opted_out", "opt_in_date"],
    "advocacy_asks": [
        "account_id",
        "contact_id",
        "deleted",
        "requested_date",
        "ask_type",
        "team",
        "id",
    ],
}
_COVER_AFTER = {
    "contacts": [*_COVER_BEFORE["contacts"], "consent_types"],
    "advocacy_asks": [*_COVER_BEFORE["advocacy_asks"][:-1], "status", "id"],
}


def _cover(cols: dict[str, list[str]]) -> None:
    for table, names in cols.items():
        op.drop_index(f"ix_{table}_account_cover", table_name=table)
        op.create_index(f"ix_{table}_account_cover", table, names)


def upgrade() -> None:
    """Add contacts.consent_types and the evaluations' recent_asks, last_ask, available_for."""
    with op.batch_alter_table("contacts") as t:
        t.add_column(sa.Column("consent_types", sa.String(255)))
    with op.batch_alter_table("evaluations") as t:
        t.add_column(sa.Column("recent_asks", sa.Integer()))
        t.add_column(sa.Column("last_ask", sa.Date()))
        t.add_column(sa.Column("available_for", sa.String(255)))
    _cover(_COVER_AFTER)


def downgrade() -> None:
    """Drop the columns again."""
    _cover(_COVER_BEFORE)
    with op.batch_alter_table("evaluations") as t:
        t.drop_column("available_for")
        t.drop_column("last_ask")
        t.drop_column("recent_asks")
    with op.batch_alter_table("contacts") as t:
        t.drop_column("consent_types")
