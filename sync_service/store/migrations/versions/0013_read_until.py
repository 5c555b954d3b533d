"""a stream's read_until: where its last finished read ended

Revision ID: 0013_read_until
Revises: 0012_steady_state
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_service.store.types import UTCDateTime

revision = "0013_read_until"
down_revision = "0012_steady_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add sync_state.read_until."""
    with op.batch_alter_table("sync_state") as t:
        t.add_column(sa.Column("read_until", UTCDateTime()))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("sync_state") as t:
        t.drop_column("read_until")
