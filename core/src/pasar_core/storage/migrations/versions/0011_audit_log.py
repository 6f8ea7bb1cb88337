"""audit log and idempotency keys

Revision ID: 0011_audit_log
Revises: 0010_organisations

`audit_log` is append-only: a trigger refuses every UPDATE and DELETE of its rows (and a
statement trigger every TRUNCATE), whichever role the application connects as, so a caller who
gets the application's credentials still cannot rewrite history. Its actor, organisation and
target are plain columns, no foreign keys: the rows outlive the users, organisations and agents
they name.

`idempotency_keys` holds one claimed `Idempotency-Key` per (user, route, key): the primary key
makes concurrent duplicates wait for, then see, the first claim; the first answer is kept with it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0011_audit_log'
down_revision = '0010_organisations'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('actor_id', sa.Uuid(), nullable=True),
        sa.Column('actor_via', sa.String(length=16), nullable=True),
        sa.Column('organisation_id', sa.Uuid(), nullable=True),
        sa.Column('api_key_id', sa.Uuid(), nullable=True),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('outcome', sa.String(length=16), server_default='ok', nullable=False),
        sa.Column('target_type', sa.String(length=32), nullable=True),
        sa.Column('target_id', sa.String(length=200), nullable=True),
        sa.Column('source', sa.String(length=100), nullable=True),
        sa.Column('provider', sa.String(length=64), nullable=True),
        sa.Column('scopes', postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column('details', postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    )  # fmt: skip
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])
    op.create_index('ix_audit_log_actor_at', 'audit_log', ['actor_id', 'at'])
    op.create_index('ix_audit_log_action_at', 'audit_log', ['action', 'at'])
    op.create_index('ix_audit_log_organisation_id', 'audit_log', ['organisation_id', 'id'])
    op.create_index('ix_audit_log_target', 'audit_log', ['target_type', 'target_id'])
    op.create_index(
        'ix_audit_log_scoped', 'audit_log', ['provider'],
        postgresql_where=sa.text('scopes IS NOT NULL'),
    )  # fmt: skip
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )
    op.create_table(
        'idempotency_keys',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('route', sa.String(length=64), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Integer(), nullable=True),
        sa.Column('response', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_idempotency_keys_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'route', 'key', name=op.f('pk_idempotency_keys')),
    )  # fmt: skip
    op.create_index('ix_idempotency_keys_expires_at', 'idempotency_keys', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_idempotency_keys_expires_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    op.execute('DROP TABLE audit_log')
    op.execute('DROP FUNCTION audit_log_append_only()')
