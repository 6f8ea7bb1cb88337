"""invitation secrets

Revision ID: 0016_invitation_secrets
Revises: 0015_agent_versions

`invitations.secret_hash`: the SHA-256 of the single-use secret an invitee must present to
accept (pasar_core.organisations.invitations). Pending invitations made before had no secret
and could be claimed by signing up with the address: they are dropped (admins invite again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_invitation_secrets'
down_revision = '0015_agent_versions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute('DELETE FROM invitations')
    op.add_column('invitations', sa.Column('secret_hash', sa.String(length=64), nullable=False))


def downgrade() -> None:
    op.drop_column('invitations', 'secret_hash')
