"""invitations die with their inviter

Revision ID: 0020_inviter_cascade
Revises: 0019_partitions

An invitation without an inviter is the operator's, which no member's standing can end: a
deleted inviter's invitations are deleted with them (they were kept with a NULL inviter, which
made them the operator's).
"""

from __future__ import annotations

from alembic import op

revision = '0020_inviter_cascade'
down_revision = '0019_partitions'
branch_labels = None
depends_on = None

FK = 'fk_invitations_invited_by_users'


def upgrade() -> None:
    op.drop_constraint(FK, 'invitations', type_='foreignkey')
    op.create_foreign_key(FK, 'invitations', 'users', ['invited_by'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    op.drop_constraint(FK, 'invitations', type_='foreignkey')
    op.create_foreign_key(FK, 'invitations', 'users', ['invited_by'], ['id'], ondelete='SET NULL')
