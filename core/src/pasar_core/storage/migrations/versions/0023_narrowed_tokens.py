"""access tokens narrowed to one agent's scopes

Revision ID: 0023_narrowed_tokens
Revises: 0022_tool_sharing

For a provider that mints a token for a subset of a grant's scopes on refresh (Google), a tool
call gets a token for its agent's compiled scopes only: kept encrypted per grant and scope set
(`narrowed_tokens`), gone with the grant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0023_narrowed_tokens'
down_revision = '0022_tool_sharing'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'narrowed_tokens',
        sa.Column('grant_id', sa.Uuid(), nullable=False),
        sa.Column('scopes_key', sa.String(length=64), nullable=False),
        sa.Column('scopes', postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column('access_token_enc', sa.LargeBinary(), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['auth_tokens.id'], ondelete='CASCADE',
                                name=op.f('fk_narrowed_tokens_grant_id_auth_tokens')),
        sa.PrimaryKeyConstraint('grant_id', 'scopes_key', name=op.f('pk_narrowed_tokens')),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table('narrowed_tokens')
