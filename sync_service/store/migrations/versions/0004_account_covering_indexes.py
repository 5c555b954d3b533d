"""canonical tables: covering indexes led by account_id for the features' range reads

Revision ID: 0004_account_cover
Revises: 0003_mapping_digest
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0004_account_cover"
down_revision = "0003_mapping_digest"
branch_labels = None
depends_on = None

# The features read one range of account ids at a time. These indexes hold every column
# they read, so the range is served from the index alone; each replaces the plain account_id
# index (same leading column, so every lookup by account_id still uses it).
_COVER = {
    "contacts": ["account_id", "id", "source", "deleted", "opted_in", "opted_out", "opt_in_date"],
    "nps_responses": ["account_id", "contact_id", "deleted", "score", "responded_at", "id"],
    "tickets": ["account_id", "deleted", "is_closed", "is_escalated", "priority", "opened_at"],
    "opportunities": [
        "account_id",
        "deleted",
        "is_closed",
        "opportunity_type",
        "close_date",
        "renewal_risk",
        "id",
    ],
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


def upgrade() -> None:
    for table, cols in _COVER.items():
        op.create_index(f"ix_{table}_account_cover", table, cols)
        op.drop_index(f"ix_{table}_account_id", table_name=table)


def downgrade() -> None:
    for table in _COVER:
        op.create_index(f"ix_{table}_account_id", table, ["account_id"])
        op.drop_index(f"ix_{table}_account_cover", table_name=table)
