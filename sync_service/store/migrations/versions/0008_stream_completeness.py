"""sync_state.incomplete_since/incomplete_reason/entity: a stream's last sync did not finish

Revision ID: 0008_stream_completeness
Revises: 0007_report_indexes
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_service.store.types import UTCDateTime

revision = "0008_stream_completeness"
down_revision = "0007_report_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_state") as batch_op:
        batch_op.add_column(sa.Column("entity", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("incomplete_since", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("incomplete_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_state") as batch_op:
        batch_op.drop_column("incomplete_reason")
        batch_op.drop_column("incomplete_since")
        batch_op.drop_column("entity")
