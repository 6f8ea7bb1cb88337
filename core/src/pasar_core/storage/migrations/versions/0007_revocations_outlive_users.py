"""Revoked sessions outlive their user: no foreign key from revoked_sessions to users.

Authentication reads the caller from the access token alone, so a deleted user's unexpired
tokens must stay denylisted after the user row is gone (the cascade used to delete the rows that
refuse them, and a process loading the denylist later would have let them in).
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(
        op.f('fk_revoked_sessions_user_id_users'), 'revoked_sessions', type_='foreignkey'
    )


def downgrade() -> None:
    op.execute('DELETE FROM revoked_sessions WHERE user_id NOT IN (SELECT id FROM users)')
    op.create_foreign_key(
        op.f('fk_revoked_sessions_user_id_users'), 'revoked_sessions', 'users', ['user_id'],
        ['id'], ondelete='CASCADE',
    )
