"""oauth states and grant health

Revision ID: 0003
Revises: 0002

Pending OAuth consents (`oauth_states`: hashed single-use state, sealed PKCE verifier, bound to
user, agent and scopes), and the health of a grant (`auth_tokens.refreshed_at`, `last_error`,
`status` limited to `active` / `needs_reauth`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_states',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=True),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('code_verifier_enc', sa.LargeBinary(), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_oauth_states_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_states')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_oauth_states_state_hash'))
    )
    op.create_index(op.f('ix_oauth_states_agent_id'), 'oauth_states', ['agent_id'], unique=False)
    op.create_index(op.f('ix_oauth_states_user_id'), 'oauth_states', ['user_id'], unique=False)
    op.add_column('auth_tokens', sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('auth_tokens', sa.Column('last_error', sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f('ck_auth_tokens_status'), 'auth_tokens', "status IN ('active', 'needs_reauth')"
    )


def downgrade() -> None:
    op.drop_constraint(op.f('ck_auth_tokens_status'), 'auth_tokens', type_='check')
    op.drop_column('auth_tokens', 'last_error')
    op.drop_column('auth_tokens', 'refreshed_at')
    op.drop_index(op.f('ix_oauth_states_user_id'), table_name='oauth_states')
    op.drop_index(op.f('ix_oauth_states_agent_id'), table_name='oauth_states')
    op.drop_table('oauth_states')
