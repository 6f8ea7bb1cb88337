"""executions events and agent secrets

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_secrets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('value_enc', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_secrets_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_secrets'))
    )
    op.create_index('uq_agent_secrets_agent_name', 'agent_secrets', ['agent_id', 'name'], unique=True)
    op.create_table('execution_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('execution_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['execution_id'], ['executions.id'], name=op.f('fk_execution_events_execution_id_executions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_execution_events'))
    )
    op.create_index('uq_execution_events_execution_seq', 'execution_events', ['execution_id', 'seq'], unique=True)
    op.add_column('executions', sa.Column('executor', sa.String(length=16), server_default='inline', nullable=False))
    op.add_column('executions', sa.Column('thread_id', sa.String(length=200), nullable=True))
    op.add_column('executions', sa.Column('webhook_url', sa.Text(), nullable=True))
    op.add_column('executions', sa.Column('cached', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('executions', sa.Column('cancel_requested', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('executions', sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('executions', sa.Column('input_hash', sa.String(length=64), nullable=True))
    op.add_column('executions', sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_executions_status', 'executions', ['status'], unique=False)
    op.create_index('ix_executions_agent_input_hash', 'executions', ['agent_id', 'input_hash'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_executions_agent_input_hash', table_name='executions')
    op.drop_index('ix_executions_status', table_name='executions')
    op.drop_column('executions', 'heartbeat_at')
    op.drop_column('executions', 'input_hash')
    op.drop_column('executions', 'attempts')
    op.drop_column('executions', 'cancel_requested')
    op.drop_column('executions', 'cached')
    op.drop_column('executions', 'webhook_url')
    op.drop_column('executions', 'thread_id')
    op.drop_column('executions', 'executor')
    op.drop_index('uq_execution_events_execution_seq', table_name='execution_events')
    op.drop_table('execution_events')
    op.drop_index('uq_agent_secrets_agent_name', table_name='agent_secrets')
    op.drop_table('agent_secrets')
