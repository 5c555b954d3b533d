"""the opportunity an ask serves (Reference_Request__c.Opportunity__c), for the influence report

Revision ID: 0010_ask_opportunity
Revises: 0009_consent_engagement
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_ask_opportunity"
down_revision = "0009_consent_engagement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add advocacy_asks.opportunity_id and the index the influence section probes."""
    with op.batch_alter_table("advocacy_asks") as t:
        t.add_column(sa.Column("opportunity_id", sa.String(255)))
    op.create_index(
        "ix_advocacy_asks_opportunity", "advocacy_asks", ["opportunity_id", "deleted"]
    )


def downgrade() -> None:
    """Drop the index and the column again."""
    op.drop_index("ix_advocacy_asks_opportunity", table_name="advocacy_asks")
    with op.batch_alter_table("advocacy_asks") as t:
        t.drop_column("opportunity_id")
