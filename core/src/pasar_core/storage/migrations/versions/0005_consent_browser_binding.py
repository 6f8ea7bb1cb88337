"""consent browser binding

Revision ID: 0005
Revises: 0004

A pending consent remembers the browser that started it (`oauth_states.browser_hash`: the hash
of its cookie's secret), and a grant the provider account that consented
(`auth_tokens.account_subject`, `account_email`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('oauth_states', sa.Column('browser_hash', sa.String(length=64), nullable=True))
    op.add_column('auth_tokens', sa.Column('account_subject', sa.String(length=255), nullable=True))
    op.add_column('auth_tokens', sa.Column('account_email', sa.String(length=320), nullable=True))


def downgrade() -> None:
    op.drop_column('auth_tokens', 'account_email')
    op.drop_column('auth_tokens', 'account_subject')
    op.drop_column('oauth_states', 'browser_hash')
