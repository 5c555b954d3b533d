"""indexes for the program report: history by time and by contact, asks by requested date

Revision ID: 0007_report_indexes
Revises: 0006_ask_api
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007_report_indexes"
down_revision = "0006_ask_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The pool over time counts changes week by week: a range of changed_at, read from the
    # index alone (no table row per change, no sort of the whole history).
    op.create_index(
        "ix_evaluation_history_timeline",
        "evaluation_history",
        ["entity_type", "changed_at", "old_status", "new_status"],
    )
    # A contact's status as of a moment (retention, asks made while unavailable): the newest
    # change before it, the last entry of the contact's range in this index.
    op.create_index(
        "ix_evaluation_history_asof",
        "evaluation_history",
        ["entity_type", "entity_id", "changed_at", "new_status"],
    )
    # The asks of a window of days (utilisation, most-asked, demand month by month), read
    # from the index alone.
    op.create_index(
        "ix_advocacy_asks_requested",
        "advocacy_asks",
        ["requested_date", "deleted", "contact_id", "team", "ask_type", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_advocacy_asks_requested", table_name="advocacy_asks")
    op.drop_index("ix_evaluation_history_asof", table_name="evaluation_history")
    op.drop_index("ix_evaluation_history_timeline", table_name="evaluation_history")
