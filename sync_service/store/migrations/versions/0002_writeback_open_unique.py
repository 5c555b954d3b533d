"""writeback outbox: at most one open (pending or failed) row per CRM record

Revision ID: 0002_writeback
Revises: 0001
Create Date: 2026-11-23 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0002_writeback"
down_revision = "0001"
branch_labels = None
depends_on = None

_OPEN = sa.text("state <> 'done'")


def upgrade() -> None:
    # The diff replaces an open row instead of adding a second one; the index makes a repeat
    # that would duplicate a pending write fail loudly instead of writing twice.
    op.create_index(
        "uq_writeback_outbox_open",
        "writeback_outbox",
        ["target", "object_name", "record_id"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("uq_writeback_outbox_open", table_name="writeback_outbox")
