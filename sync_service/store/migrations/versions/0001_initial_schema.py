"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 19:02:12.868859
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync_service.store.types
from sqlalchemy.dialects import postgresql


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('accounts',
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('industry', sa.String(length=255), nullable=True),
    sa.Column('region', sa.String(length=255), nullable=True),
    sa.Column('segment', sa.String(length=255), nullable=True),
    sa.Column('account_type', sa.String(length=255), nullable=True),
    sa.Column('customer_since', sa.Date(), nullable=True),
    sa.Column('health_score', sa.Float(), nullable=True),
    sa.Column('nps_score', sa.Float(), nullable=True),
    sa.Column('payment_overdue', sa.Boolean(), nullable=True),
    sa.Column('churn_risk', sa.Boolean(), nullable=True),
    sa.Column('sf_account_id', sa.String(length=255), nullable=True),
    sa.Column('source_updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'id', name=op.f('pk_accounts'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_sf_account_id'), ['sf_account_id'], unique=False)

    op.create_table('advocacy_asks',
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('contact_id', sa.String(length=255), nullable=True),
    sa.Column('account_id', sa.String(length=255), nullable=True),
    sa.Column('ask_type', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=255), nullable=True),
    sa.Column('requested_date', sa.Date(), nullable=True),
    sa.Column('team', sa.String(length=255), nullable=True),
    sa.Column('source_updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'id', name=op.f('pk_advocacy_asks'))
    )
    with op.batch_alter_table('advocacy_asks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_advocacy_asks_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_advocacy_asks_contact_id'), ['contact_id'], unique=False)

    op.create_table('contacts',
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('first_name', sa.String(length=255), nullable=True),
    sa.Column('last_name', sa.String(length=255), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=True),
    sa.Column('opted_in', sa.Boolean(), nullable=True),
    sa.Column('opted_out', sa.Boolean(), nullable=True),
    sa.Column('opt_in_date', sa.Date(), nullable=True),
    sa.Column('opt_in_source', sa.String(length=255), nullable=True),
    sa.Column('sf_contact_id', sa.String(length=255), nullable=True),
    sa.Column('source_updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'id', name=op.f('pk_contacts'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_sf_contact_id'), ['sf_contact_id'], unique=False)

    op.create_table('evaluation_history',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entity_type', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('old_status', sa.String(length=32), nullable=True),
    sa.Column('new_status', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('policy_version', sa.String(length=64), nullable=True),
    sa.Column('policy_hash', sa.String(length=64), nullable=True),
    sa.Column('changed_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_history'))
    )
    with op.batch_alter_table('evaluation_history', schema=None) as batch_op:
        batch_op.create_index('ix_evaluation_history_entity', ['entity_type', 'entity_id'], unique=False)

    op.create_table('evaluations',
    sa.Column('entity_type', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('eligible', sa.Boolean(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('next_available', sa.Date(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('policy_version', sa.String(length=64), nullable=True),
    sa.Column('policy_hash', sa.String(length=64), nullable=True),
    sa.Column('evaluated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('entity_type', 'entity_id', name=op.f('pk_evaluations'))
    )
    op.create_table('nps_responses',
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('contact_id', sa.String(length=255), nullable=True),
    sa.Column('account_id', sa.String(length=255), nullable=True),
    sa.Column('person_id', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('responded_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source_updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'id', name=op.f('pk_nps_responses'))
    )
    with op.batch_alter_table('nps_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nps_responses_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_nps_responses_contact_id'), ['contact_id'], unique=False)

    op.create_table('opportunities',
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=255), nullable=True),
    sa.Column('opportunity_type', sa.String(length=255), nullable=True),
    sa.Column('stage', sa.String(length=255), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=True),
    sa.Column('is_won', sa.Boolean(), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('renewal_risk', sa.String(length=255), nullable=True),
    sa.Column('source_updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'id', name=op.f('pk_opportunities'))
    )
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunities_account_id'), ['account_id'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('connector', sa.String(length=32), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('resolved', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index('ix_quarantine_record', ['connector', 'stream', 'record_id'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('counts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('api_calls', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('config_errors', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_job'), ['job'], unique=False)

    op.create_table('sync_state',
    sa.Column('connector', sa.String(length=32), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('cursor_updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cursor_id', sa.String(length=64), nullable=True),
    sa.Column('last_full_sync_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_reconciled_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connector', 'stream', name=op.f('pk_sync_state'))
    )
    op.create_table('tickets',
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=255), nullable=True),
    sa.Column('contact_id', sa.String(length=255), nullable=True),
    sa.Column('priority', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=255), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=True),
    sa.Column('is_escalated', sa.Boolean(), nullable=True),
    sa.Column('opened_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source_updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'id', name=op.f('pk_tickets'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_account_id'), ['account_id'], unique=False)

    op.create_table('writeback_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('object_name', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=128), nullable=False),
    sa.Column('old_value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('new_value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('policy_version', sa.String(length=64), nullable=True),
    sa.Column('written_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_writeback_log'))
    )
    with op.batch_alter_table('writeback_log', schema=None) as batch_op:
        batch_op.create_index('ix_writeback_log_record', ['target', 'object_name', 'record_id'], unique=False)

    op.create_table('writeback_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('object_name', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('old_values', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('policy_version', sa.String(length=64), nullable=True),
    sa.Column('created_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_writeback_outbox'))
    )
    with op.batch_alter_table('writeback_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_writeback_outbox_record', ['target', 'object_name', 'record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_writeback_outbox_state'), ['state'], unique=False)

    op.create_table('writeback_state',
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('object_name', sa.String(length=64), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=128), nullable=False),
    sa.Column('value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('confirmed_at', sync_service.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('target', 'object_name', 'record_id', 'field', name=op.f('pk_writeback_state'))
    )
    


def downgrade() -> None:
    
    op.drop_table('writeback_state')
    with op.batch_alter_table('writeback_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_writeback_outbox_state'))
        batch_op.drop_index('ix_writeback_outbox_record')

    op.drop_table('writeback_outbox')
    with op.batch_alter_table('writeback_log', schema=None) as batch_op:
        batch_op.drop_index('ix_writeback_log_record')

    op.drop_table('writeback_log')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_account_id'))

    op.drop_table('tickets')
    op.drop_table('sync_state')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_job'))

    op.drop_table('runs')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantine_record')

    op.drop_table('quarantine')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunities_account_id'))

    op.drop_table('opportunities')
    with op.batch_alter_table('nps_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nps_responses_contact_id'))
        batch_op.drop_index(batch_op.f('ix_nps_responses_account_id'))

    op.drop_table('nps_responses')
    op.drop_table('evaluations')
    with op.batch_alter_table('evaluation_history', schema=None) as batch_op:
        batch_op.drop_index('ix_evaluation_history_entity')

    op.drop_table('evaluation_history')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_sf_contact_id'))
        batch_op.drop_index(batch_op.f('ix_contacts_email'))
        batch_op.drop_index(batch_op.f('ix_contacts_account_id'))

    op.drop_table('contacts')
    with op.batch_alter_table('advocacy_asks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_advocacy_asks_contact_id'))
        batch_op.drop_index(batch_op.f('ix_advocacy_asks_account_id'))

    op.drop_table('advocacy_asks')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_sf_account_id'))

    op.drop_table('accounts')
    
