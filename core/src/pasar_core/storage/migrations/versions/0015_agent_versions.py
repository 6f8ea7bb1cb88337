"""agent config versions; the version an execution ran; threads read by (agent, user, thread)

Revision ID: 0015_agent_versions
Revises: 0014_approval_expiry

`agent_versions`: one immutable snapshot (name, tools, config, author) per create, update and
rollback of an agent; `agents.version` is the newest one's number and `executions.agent_version`
the version a run runs. Every existing agent gets its current state as version 1 (author: its
owner). `ix_executions_agent_user_thread` serves listing and reading one user's threads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0015_agent_versions'
down_revision = '0014_approval_expiry'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('agents', sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    op.add_column('executions', sa.Column('agent_version', sa.Integer(), nullable=True))
    op.create_table(
        'agent_versions',
        sa.Column('agent_id', sa.Uuid(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('tools', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('author_id', sa.Uuid(), nullable=True),
        sa.Column('rolled_back_from', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'],
                                name=op.f('fk_agent_versions_agent_id_agents'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['author_id'], ['users.id'],
                                name=op.f('fk_agent_versions_author_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('agent_id', 'version', name=op.f('pk_agent_versions')),
    )  # fmt: skip
    op.create_index(op.f('ix_agent_versions_author_id'), 'agent_versions', ['author_id'])
    op.execute(
        "INSERT INTO agent_versions (agent_id, version, name, tools, config, author_id, created_at) "
        "SELECT a.id, 1, a.name, COALESCE((SELECT jsonb_agg(t.tool_id ORDER BY t.position) "
        "FROM agent_tools t WHERE t.agent_id = a.id), '[]'::jsonb), a.config, a.owner_id, "
        "a.updated_at FROM agents a"
    )
    op.create_index(
        'ix_executions_agent_user_thread', 'executions', ['agent_id', 'user_id', 'thread_id'],
        postgresql_where=sa.text('thread_id IS NOT NULL'),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index('ix_executions_agent_user_thread', table_name='executions')
    op.drop_index(op.f('ix_agent_versions_author_id'), table_name='agent_versions')
    op.drop_table('agent_versions')
    op.drop_column('executions', 'agent_version')
    op.drop_column('agents', 'version')
