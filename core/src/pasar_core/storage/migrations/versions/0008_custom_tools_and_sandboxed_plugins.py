"""custom tools and sandboxed plugins

Revision ID: 0008
Revises: 0007

Custom tools (`custom_tools`, `custom_tool_versions`, namespaces claimed in `tool_namespaces`),
sandboxed plugins (`sandboxed_plugins`), a change counter per scope (`tool_revisions`), and the
catalogue's `tools` rows learn where a tool comes from (`source`) and whose it is (`owner_id`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tools', sa.Column('source', sa.String(length=16), server_default='installed', nullable=False))
    op.add_column('tools', sa.Column('owner_id', sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f('fk_tools_owner_id_users'), 'tools', 'users', ['owner_id'], ['id'], ondelete='CASCADE')
    op.create_index(op.f('ix_tools_owner_id'), 'tools', ['owner_id'], unique=False)
    op.create_check_constraint(op.f('ck_tools_source'), 'tools', "source IN ('installed', 'sandboxed', 'custom')")
    op.create_table('tool_namespaces',
    sa.Column('namespace', sa.String(length=24), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_tool_namespaces_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('namespace', name=op.f('pk_tool_namespaces'))
    )
    op.create_index(op.f('ix_tool_namespaces_owner_id'), 'tool_namespaces', ['owner_id'], unique=False)
    op.create_table('custom_tools',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('tool_id', sa.String(length=60), nullable=False),
    sa.Column('namespace', sa.String(length=24), nullable=False),
    sa.Column('latest_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_custom_tools_owner_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['namespace'], ['tool_namespaces.namespace'], name=op.f('fk_custom_tools_namespace_tool_namespaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_tools')),
    sa.UniqueConstraint('tool_id', name=op.f('uq_custom_tools_tool_id'))
    )
    op.create_index(op.f('ix_custom_tools_owner_id'), 'custom_tools', ['owner_id'], unique=False)
    op.create_table('custom_tool_versions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('custom_tool_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['custom_tool_id'], ['custom_tools.id'], name=op.f('fk_custom_tool_versions_custom_tool_id_custom_tools'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_tool_versions'))
    )
    op.create_index('uq_custom_tool_versions_tool_version', 'custom_tool_versions', ['custom_tool_id', 'version'], unique=True)
    op.create_table('tool_revisions',
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('scope', name=op.f('pk_tool_revisions'))
    )
    op.create_table('sandboxed_plugins',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('distribution', sa.String(length=200), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('image', sa.Text(), nullable=False),
    sa.Column('manifest', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('allow_hosts', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('installed_by', sa.Uuid(), nullable=True),
    sa.Column('installed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['installed_by'], ['users.id'], name=op.f('fk_sandboxed_plugins_installed_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sandboxed_plugins'))
    )


def downgrade() -> None:
    op.drop_table('sandboxed_plugins')
    op.drop_table('tool_revisions')
    op.drop_index('uq_custom_tool_versions_tool_version', table_name='custom_tool_versions')
    op.drop_table('custom_tool_versions')
    op.drop_index(op.f('ix_custom_tools_owner_id'), table_name='custom_tools')
    op.drop_table('custom_tools')
    op.drop_index(op.f('ix_tool_namespaces_owner_id'), table_name='tool_namespaces')
    op.drop_table('tool_namespaces')
    op.execute("DELETE FROM agent_tools WHERE tool_id IN (SELECT id FROM tools WHERE source <> 'installed')")
    op.execute("DELETE FROM tools WHERE source <> 'installed'")
    op.drop_constraint(op.f('ck_tools_source'), 'tools', type_='check')
    op.drop_index(op.f('ix_tools_owner_id'), table_name='tools')
    op.drop_constraint(op.f('fk_tools_owner_id_users'), 'tools', type_='foreignkey')
    op.drop_column('tools', 'owner_id')
    op.drop_column('tools', 'source')
