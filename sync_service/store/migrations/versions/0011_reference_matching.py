"""reference matching: the advocates proposed on each open deal

Revision ID: 0011_reference_matching
Revises: 0010_ask_opportunity
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_service.store.types import JSONType, UTCDateTime

revision = "0011_reference_matching"
down_revision = "0010_ask_opportunity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_suggestions",
        sa.Column("opportunity_id", sa.String(64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64)),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("terms", JSONType),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.Integer()),
        sa.PrimaryKeyConstraint("opportunity_id", "rank", name="pk_match_suggestions"),
    )
    op.create_index("ix_match_suggestions_contact", "match_suggestions", ["contact_id"])
    op.create_index("ix_match_suggestions_run", "match_suggestions", ["run_id"])


def downgrade() -> None:
    op.drop_table("match_suggestions")
