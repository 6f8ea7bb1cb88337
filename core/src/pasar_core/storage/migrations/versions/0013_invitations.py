"""invitations, operator API keys, idempotency keys per organisation, retention of knowledge
and files

Revision ID: 0013_invitations
Revises: 0012_retention

`invitations`: an admin's pending offer of a role in an organisation to an email address;
the membership exists only once the invitee accepts (pasar_core.organisations.invitations).
`api_keys.operator`: whether a key carries its creator's operator powers (false for every
existing key: they were never asked for). `idempotency_keys` gains `organisation_id` in its
primary key (user, organisation, route, key); the claims already stored are short-lived
replays and are dropped rather than guessed into an organisation. `organisations.knowledge_days`
and `file_days` extend the retention policy (NULL keeps everything, as before); runs are now cut
on `finished_at`, hence the index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_invitations'
down_revision = '0012_retention'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ('knowledge_days', 'file_days'):
        op.add_column('organisations', sa.Column(column, sa.Integer(), nullable=True))
        op.create_check_constraint(
            op.f(f'ck_organisations_{column}'), 'organisations', f'{column} > 0'
        )
    op.create_index(
        'ix_executions_organisation_finished', 'executions', ['organisation_id', 'finished_at']
    )
    op.create_table(
        'invitations',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('organisation_id', sa.Uuid(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('invited_by', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'member', 'viewer')", name=op.f('ck_invitations_role')),
        sa.ForeignKeyConstraint(['invited_by'], ['users.id'],
                                name=op.f('fk_invitations_invited_by_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                                name=op.f('fk_invitations_organisation_id_organisations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
        sa.UniqueConstraint('organisation_id', 'email',
                            name=op.f('uq_invitations_organisation_id')),
    )  # fmt: skip
    op.create_index(op.f('ix_invitations_email'), 'invitations', ['email'])
    op.create_index(op.f('ix_invitations_expires_at'), 'invitations', ['expires_at'])
    op.add_column('api_keys', sa.Column('operator', sa.Boolean(), server_default=sa.false(),
                                        nullable=False))  # fmt: skip
    op.execute('DELETE FROM idempotency_keys')
    op.drop_constraint('pk_idempotency_keys', 'idempotency_keys', type_='primary')
    op.add_column('idempotency_keys', sa.Column('organisation_id', sa.Uuid(), nullable=False))
    op.create_foreign_key(
        op.f('fk_idempotency_keys_organisation_id_organisations'), 'idempotency_keys',
        'organisations', ['organisation_id'], ['id'], ondelete='CASCADE',
    )  # fmt: skip
    op.create_primary_key(
        'pk_idempotency_keys', 'idempotency_keys', ['user_id', 'organisation_id', 'route', 'key']
    )


def downgrade() -> None:
    op.execute('DELETE FROM idempotency_keys')
    op.drop_constraint('pk_idempotency_keys', 'idempotency_keys', type_='primary')
    op.drop_constraint(op.f('fk_idempotency_keys_organisation_id_organisations'),
                       'idempotency_keys', type_='foreignkey')  # fmt: skip
    op.drop_column('idempotency_keys', 'organisation_id')
    op.create_primary_key('pk_idempotency_keys', 'idempotency_keys', ['user_id', 'route', 'key'])
    op.drop_column('api_keys', 'operator')
    op.drop_index(op.f('ix_invitations_expires_at'), table_name='invitations')
    op.drop_index(op.f('ix_invitations_email'), table_name='invitations')
    op.drop_table('invitations')
    op.drop_index('ix_executions_organisation_finished', table_name='executions')
    for column in ('knowledge_days', 'file_days'):
        op.drop_constraint(op.f(f'ck_organisations_{column}'), 'organisations', type_='check')
        op.drop_column('organisations', column)
