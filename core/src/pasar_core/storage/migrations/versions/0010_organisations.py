"""organisations, memberships and sharing

Revision ID: 0010_organisations
Revises: 0009

A user belongs to organisations with a role (`admin`, `member`, `viewer`); every existing user
gets a personal organisation where they are admin. `users.role` (never enforced) gives way to
`users.operator`, the server operator's flag (admins of the old role become operators). API keys
carry an organisation and a role (the old user role, so a former viewer's keys stay read-only);
refresh tokens remember the organisation of their session. Agents and executions live in an
organisation (the owner's personal one for existing rows); an agent is private to its owner or
shared with its organisation with a role (`shared_role`). `agent_connections` are the OAuth
grants a user attached to an agent explicitly (the only grants a shared agent run by another
member may use).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_organisations"
down_revision = "0009"
branch_labels = None
depends_on = None

ROLES = "role IN ('admin', 'member', 'viewer')"


def _org_column(table: str) -> None:
    op.add_column(table, sa.Column('organisation_id', sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f(f'fk_{table}_organisation_id_organisations'), table, 'organisations',
        ['organisation_id'], ['id'], ondelete='CASCADE',
    )  # fmt: skip
    op.create_index(op.f(f'ix_{table}_organisation_id'), table, ['organisation_id'])


def upgrade() -> None:
    op.create_table(
        'organisations',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('personal', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('created_by', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL',
                                name=op.f('fk_organisations_created_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_organisations')),
    )  # fmt: skip
    op.create_table(
        'memberships',
        sa.Column('organisation_id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.CheckConstraint(ROLES, name=op.f('ck_memberships_role')),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], ondelete='CASCADE',
                                name=op.f('fk_memberships_organisation_id_organisations')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_memberships_user_id_users')),
        sa.PrimaryKeyConstraint('organisation_id', 'user_id', name=op.f('pk_memberships')),
    )  # fmt: skip
    op.create_index(op.f('ix_memberships_user_id'), 'memberships', ['user_id'])
    op.execute(
        "INSERT INTO organisations (id, name, personal, created_by) "
        "SELECT gen_random_uuid(), left(email, 200), true, id FROM users"
    )
    op.execute(
        "INSERT INTO memberships (organisation_id, user_id, role) "
        "SELECT id, created_by, 'admin' FROM organisations WHERE personal"
    )
    personal = "(SELECT o.id FROM organisations o WHERE o.personal AND o.created_by = {})"

    op.add_column('users', sa.Column('operator', sa.Boolean(), server_default=sa.false(),
                                     nullable=False))  # fmt: skip
    op.execute("UPDATE users SET operator = (role = 'admin')")

    _org_column('api_keys')
    op.add_column('api_keys', sa.Column('role', sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE api_keys AS k SET organisation_id = " + personal.format("k.user_id")
        + ", role = (SELECT u.role FROM users u WHERE u.id = k.user_id)"
    )  # fmt: skip
    op.alter_column('api_keys', 'organisation_id', nullable=False)
    op.alter_column('api_keys', 'role', nullable=False)
    op.create_check_constraint(op.f('ck_api_keys_role'), 'api_keys', ROLES)

    _org_column('refresh_tokens')
    op.execute(
        "UPDATE refresh_tokens AS r SET organisation_id = " + personal.format("r.user_id")
    )

    _org_column('agents')
    op.execute("UPDATE agents AS a SET organisation_id = " + personal.format("a.owner_id"))
    op.alter_column('agents', 'organisation_id', nullable=False)
    op.add_column('agents', sa.Column('shared_role', sa.String(length=16), nullable=True))
    op.create_check_constraint(
        op.f('ck_agents_shared_role'), 'agents', "shared_role IN ('admin', 'member', 'viewer')"
    )

    _org_column('executions')
    op.execute(
        "UPDATE executions AS e SET organisation_id = "
        "(SELECT a.organisation_id FROM agents a WHERE a.id = e.agent_id)"
    )
    op.alter_column('executions', 'organisation_id', nullable=False)

    op.create_table(
        'agent_connections',
        sa.Column('agent_id', sa.Uuid(), nullable=False),
        sa.Column('provider', sa.String(length=100), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ondelete='CASCADE',
                                name=op.f('fk_agent_connections_agent_id_agents')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_agent_connections_user_id_users')),
        sa.PrimaryKeyConstraint('agent_id', 'provider', name=op.f('pk_agent_connections')),
    )  # fmt: skip

    op.drop_constraint(op.f('ck_users_role'), 'users', type_='check')
    op.drop_column('users', 'role')


def downgrade() -> None:
    op.add_column('users', sa.Column('role', sa.String(length=16), server_default='member',
                                     nullable=False))  # fmt: skip
    op.execute("UPDATE users SET role = CASE WHEN operator THEN 'admin' ELSE 'member' END")
    op.create_check_constraint(op.f('ck_users_role'), 'users', ROLES)
    op.drop_table('agent_connections')
    for table in ('executions', 'agents', 'refresh_tokens', 'api_keys'):
        op.drop_index(op.f(f'ix_{table}_organisation_id'), table_name=table)
        op.drop_constraint(
            op.f(f'fk_{table}_organisation_id_organisations'), table, type_='foreignkey'
        )
        op.drop_column(table, 'organisation_id')
    op.drop_constraint(op.f('ck_agents_shared_role'), 'agents', type_='check')
    op.drop_column('agents', 'shared_role')
    op.drop_constraint(op.f('ck_api_keys_role'), 'api_keys', type_='check')
    op.drop_column('api_keys', 'role')
    op.drop_column('users', 'operator')
    op.drop_index(op.f('ix_memberships_user_id'), table_name='memberships')
    op.drop_table('memberships')
    op.drop_table('organisations')
