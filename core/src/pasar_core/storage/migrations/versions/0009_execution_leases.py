"""execution leases

Revision ID: 0009
Revises: 0008

Runs that survive their process: `executions.lease` is the claim of the runner that may write a
run's steps (checked on every write, so a runner that lost its claim writes nothing), `owner`
names it, `interruptions` counts how often a run's process died under it, and
`last_seq` is the run's newest event number (the next is `last_seq + 1`, read
from the row instead of `max(seq)` over the events). Statuses are checked by a constraint, and
active runs are found by their heartbeat through a partial index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STATUSES = ("'queued', 'running', 'awaiting_approval', 'awaiting_authorization', "
            "'succeeded', 'failed', 'limit_exceeded', 'cancelled'")  # fmt: skip


def upgrade() -> None:
    op.add_column('executions', sa.Column('lease', sa.Uuid(), nullable=True))
    op.add_column('executions', sa.Column('owner', sa.String(length=200), nullable=True))
    op.add_column(
        'executions', sa.Column('last_seq', sa.Integer(), server_default='0', nullable=False)
    )
    op.add_column(
        'executions',
        sa.Column('interruptions', sa.Integer(), server_default='0', nullable=False),
    )
    op.execute(
        "UPDATE executions AS e SET last_seq = coalesce("
        "(SELECT max(seq) FROM execution_events WHERE execution_id = e.id), 0)"
    )
    op.create_check_constraint(op.f('ck_executions_status'), 'executions', f"status IN ({STATUSES})")
    op.create_index(
        'ix_executions_active_heartbeat', 'executions', ['heartbeat_at'], unique=False,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index(
        'ix_executions_active_heartbeat', table_name='executions',
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )  # fmt: skip
    op.drop_constraint(op.f('ck_executions_status'), 'executions', type_='check')
    op.drop_column('executions', 'interruptions')
    op.drop_column('executions', 'last_seq')
    op.drop_column('executions', 'owner')
    op.drop_column('executions', 'lease')
