"""identity scope: the e-mail before a change, the indexes incremental identity linking probes

Revision ID: 0014_identity_scope
Revises: 0013_read_until
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_identity_scope"
down_revision = "0013_read_until"
branch_labels = None
depends_on = None

#: Identity linking's full mark (sync/changes.py ID_FULL), spelt here as the migration's own.
_ID_FULL = "id:*"


def upgrade() -> None:
    """Add eval_marks.prior, identity_unlinked, the e-mail key indexes, a person index.

    A store that already holds Gainsight rows gets a full identity mark: the Salesforce
    changes synced before this revision left no identity mark, so the next linking links all.
    """
    with op.batch_alter_table("eval_marks") as t:
        t.add_column(sa.Column("prior", sa.String(255)))
    op.create_table(
        "identity_unlinked",
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("ambiguous", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "id", name="pk_identity_unlinked"),
    )
    for table in ("contacts", "nps_responses"):
        op.create_index(f"ix_{table}_email_key", table, [sa.text("lower(trim(email))"), "source"])
    op.create_index("ix_nps_responses_person_id", "nps_responses", ["person_id"])
    op.execute(
        sa.text(
            "INSERT INTO eval_marks (source, entity, id, marked_at) "
            "SELECT 'gainsight', :entity, 'migration', CURRENT_TIMESTAMP "
            "WHERE EXISTS (SELECT 1 FROM contacts WHERE source = 'gainsight') "
            "OR EXISTS (SELECT 1 FROM accounts WHERE source = 'gainsight') "
            "OR EXISTS (SELECT 1 FROM nps_responses WHERE source = 'gainsight')"
        ).bindparams(entity=_ID_FULL)
    )


def downgrade() -> None:
    """Drop them again (and the identity marks, which only this revision's code reads)."""
    op.execute(sa.text("DELETE FROM eval_marks WHERE entity LIKE 'id:%'"))
    op.drop_index("ix_nps_responses_person_id", table_name="nps_responses")
    for table in ("contacts", "nps_responses"):
        op.drop_index(f"ix_{table}_email_key", table_name=table)
    op.drop_table("identity_unlinked")
    with op.batch_alter_table("eval_marks") as t:
        t.drop_column("prior")
