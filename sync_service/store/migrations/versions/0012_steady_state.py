"""steady state: change marks, the evaluation's scope, a verdict's valid_until

Revision ID: 0012_steady_state
Revises: 0011_reference_matching
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_service.store.types import UTCDateTime

revision = "0012_steady_state"
down_revision = "0011_reference_matching"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add eval_marks, eval_scope and evaluations.valid_until."""
    op.create_table(
        "eval_marks",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64)),
        sa.Column("marked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_eval_marks"),
    )
    op.create_index("ix_eval_marks_key", "eval_marks", ["entity", "source", "id"])
    op.create_table(
        "eval_scope",
        sa.Column("id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_eval_scope"),
    )
    with op.batch_alter_table("evaluations") as t:
        t.add_column(sa.Column("valid_until", sa.Date()))
    op.create_index("ix_evaluations_valid_until", "evaluations", ["valid_until"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_evaluations_valid_until", table_name="evaluations")
    with op.batch_alter_table("evaluations") as t:
        t.drop_column("valid_until")
    op.drop_table("eval_scope")
    op.drop_index("ix_eval_marks_key", table_name="eval_marks")
    op.drop_table("eval_marks")
