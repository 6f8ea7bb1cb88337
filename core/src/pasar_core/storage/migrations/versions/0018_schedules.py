"""schedules: cron schedules on agents, and the runs they fire

Revision ID: 0018_schedules
Revises: 0017_knowledge

`schedules`: an owner's cron expression, IANA timezone, input (and optional thread) on an
agent; `next_run_at` is the next tick to fire (NULL while paused). `executions.schedule_id` and
`executions.scheduled_for` mark a fired run; `uq_executions_schedule_tick` lets each
(schedule, tick) have one run at most, whatever the number of processes firing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0018_schedules'
down_revision = '0017_knowledge'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'schedules',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('agent_id', sa.Uuid(), nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=False),
        sa.Column('organisation_id', sa.Uuid(), nullable=False),
        sa.Column('cron', sa.String(length=200), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('input', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('thread_id', sa.String(length=200), nullable=True),
        sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_fired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('paused_reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'],
                                name=op.f('fk_schedules_agent_id_agents'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'],
                                name=op.f('fk_schedules_owner_id_users'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                                name=op.f('fk_schedules_organisation_id_organisations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules')),
    )  # fmt: skip
    op.create_index('ix_schedules_agent_owner', 'schedules', ['agent_id', 'owner_id'])
    op.create_index(op.f('ix_schedules_owner_id'), 'schedules', ['owner_id'])
    op.create_index(op.f('ix_schedules_organisation_id'), 'schedules', ['organisation_id'])
    op.create_index('ix_schedules_due', 'schedules', ['next_run_at'],
                    postgresql_where=sa.text('paused_at IS NULL'))  # fmt: skip
    op.add_column('executions', sa.Column('schedule_id', sa.Uuid(), nullable=True))
    op.add_column('executions',
                  sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True))  # fmt: skip
    op.create_foreign_key(op.f('fk_executions_schedule_id_schedules'), 'executions', 'schedules',
                          ['schedule_id'], ['id'], ondelete='SET NULL')  # fmt: skip
    op.create_index(
        'uq_executions_schedule_tick', 'executions', ['schedule_id', 'scheduled_for'],
        unique=True, postgresql_where=sa.text('schedule_id IS NOT NULL'),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index('uq_executions_schedule_tick', table_name='executions')
    op.drop_constraint(op.f('fk_executions_schedule_id_schedules'), 'executions',
                       type_='foreignkey')  # fmt: skip
    op.drop_column('executions', 'scheduled_for')
    op.drop_column('executions', 'schedule_id')
    op.drop_index('ix_schedules_due', table_name='schedules')
    op.drop_index(op.f('ix_schedules_organisation_id'), table_name='schedules')
    op.drop_index(op.f('ix_schedules_owner_id'), table_name='schedules')
    op.drop_index('ix_schedules_agent_owner', table_name='schedules')
    op.drop_table('schedules')
