"""sync_state.mapping_digest: re-read a stream in full when its mapping changes

Revision ID: 0003_mapping_digest
Revises: 0002_writeback
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_mapping_digest"
down_revision = "0002_writeback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_state") as batch_op:
        batch_op.add_column(sa.Column("mapping_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_state") as batch_op:
        batch_op.drop_column("mapping_digest")
