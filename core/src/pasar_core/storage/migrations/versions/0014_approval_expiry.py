"""approval expiry of paused runs

Revision ID: 0014_approval_expiry
Revises: 0013_invitations

`executions.approval_expires_at`: while a run is awaiting_approval, when its pause ends the run
(`failed`, APPROVAL_EXPIRED); set by the runner when it pauses, cleared by a decision. Runs
paused before this revision have none and wait as before. The partial index serves the sweep.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_approval_expiry'
down_revision = '0013_invitations'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'executions', sa.Column('approval_expires_at', sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        'ix_executions_approval_expires', 'executions', ['approval_expires_at'],
        postgresql_where=sa.text("status = 'awaiting_approval'"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index('ix_executions_approval_expires', table_name='executions')
    op.drop_column('executions', 'approval_expires_at')
