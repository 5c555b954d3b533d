"""the Ask API: API tokens, the ask audit, and create operations in the writeback outbox

Revision ID: 0006_ask_api
Revises: 0005_privacy
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_service.store.types import JSONType, UTCDateTime

revision = "0006_ask_api"
down_revision = "0005_privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("writeback_outbox") as batch:
        batch.add_column(
            sa.Column("operation", sa.String(8), nullable=False, server_default="update")
        )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("team", sa.String(64)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "ask_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("team", sa.String(64)),
        sa.Column("token_name", sa.String(64)),
        sa.Column("contact_id", sa.String(64)),
        sa.Column("account_id", sa.String(64)),
        sa.Column("ask_type", sa.String(255)),
        sa.Column("ask_id", sa.String(64)),
        sa.Column("requested_by", sa.String(255)),
        sa.Column("override_reason", sa.Text()),
        sa.Column("reasons", JSONType),
        sa.PrimaryKeyConstraint("id", name="pk_ask_audit"),
    )
    op.create_index("ix_ask_audit_contact", "ask_audit", ["contact_id"])
    op.create_index("ix_ask_audit_at", "ask_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ask_audit_at", "ask_audit")
    op.drop_index("ix_ask_audit_contact", "ask_audit")
    op.drop_table("ask_audit")
    op.drop_table("api_tokens")
    with op.batch_alter_table("writeback_outbox") as batch:
        batch.drop_column("operation")
