"""organisations' retention policy

Revision ID: 0012_retention
Revises: 0011_audit_log

`organisations.retention_days`: how many days an organisation's finished runs (with their
events) are kept; NULL (every existing organisation) keeps them (pasar_core.privacy.retention).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_retention'
down_revision = '0011_audit_log'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('organisations', sa.Column('retention_days', sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f('ck_organisations_retention_days'), 'organisations', 'retention_days > 0'
    )
    op.create_index(
        'ix_executions_organisation_created', 'executions', ['organisation_id', 'created_at']
    )


def downgrade() -> None:
    op.drop_index('ix_executions_organisation_created', table_name='executions')
    op.drop_constraint(op.f('ck_organisations_retention_days'), 'organisations', type_='check')
    op.drop_column('organisations', 'retention_days')
