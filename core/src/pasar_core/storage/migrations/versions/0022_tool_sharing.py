"""custom tools shared with an organisation

Revision ID: 0022_tool_sharing
Revises: 0020_inviter_cascade

A custom tool is private to its owner or shared with one organisation with a role, like an
agent (`shared_role`); unlike an agent it is its owner's in every organisation they act in, so
the organisation it is shared with is its own column (`shared_organisation_id`, NULL: private).
A deleted organisation makes the tools shared with it private again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022_tool_sharing'
down_revision = '0020_inviter_cascade'
branch_labels = None
depends_on = None

FK = 'fk_custom_tools_shared_organisation_id_organisations'
INDEX = 'ix_custom_tools_shared_organisation_id'


def upgrade() -> None:
    op.add_column('custom_tools', sa.Column('shared_organisation_id', sa.Uuid(), nullable=True))
    op.add_column('custom_tools', sa.Column('shared_role', sa.String(length=16), nullable=True))
    op.create_foreign_key(
        FK, 'custom_tools', 'organisations', ['shared_organisation_id'], ['id'],
        ondelete='SET NULL',
    )  # fmt: skip
    op.create_index(INDEX, 'custom_tools', ['shared_organisation_id'])
    op.create_check_constraint(
        op.f('ck_custom_tools_shared_role'), 'custom_tools',
        "shared_role IN ('admin', 'member', 'viewer')",
    )  # fmt: skip


def downgrade() -> None:
    op.drop_constraint(op.f('ck_custom_tools_shared_role'), 'custom_tools', type_='check')
    op.drop_index(INDEX, table_name='custom_tools')
    op.drop_constraint(FK, 'custom_tools', type_='foreignkey')
    op.drop_column('custom_tools', 'shared_role')
    op.drop_column('custom_tools', 'shared_organisation_id')
