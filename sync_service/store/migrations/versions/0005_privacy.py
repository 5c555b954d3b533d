"""privacy: erasure audit, tombstones (keyed hashes), deleted-record retention tracking

Revision ID: 0005_privacy
Revises: 0004_account_cover
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from sync_service.store.types import UTCDateTime

revision = "0005_privacy"
down_revision = "0004_account_cover"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    # Plain CREATE TABLE: no extension, no superuser (the service's own role owns them).
    op.create_table(
        "privacy_erasures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("erased_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("subject_digest", sa.String(length=64), nullable=False),
        sa.Column("tables", _JSON, nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_erasures")),
    )
    op.create_table(
        "privacy_tombstones",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=True),
        sa.Column("erasure_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_privacy_tombstones")),
    )
    op.create_table(
        "privacy_deleted_seen",
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("purged_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("table_name", "source", "id", name=op.f("pk_privacy_deleted_seen")),
    )


def downgrade() -> None:
    op.drop_table("privacy_deleted_seen")
    op.drop_table("privacy_tombstones")
    op.drop_table("privacy_erasures")
