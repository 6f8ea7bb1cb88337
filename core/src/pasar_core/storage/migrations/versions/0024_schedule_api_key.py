"""a schedule remembers the API key that made it

Revision ID: 0024_schedule_api_key
Revises: 0023_narrowed_tokens

A schedule made with an API key fires with that key's standing: the weaker of the key's role
and its owner's, and no run once the key is revoked or expired. The key's deletion takes its
schedules with it. Expand-only: a nullable column the previous release does not read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0024_schedule_api_key'
down_revision = '0023_narrowed_tokens'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('schedules', sa.Column('api_key_id', sa.Uuid(), nullable=True))
    op.create_foreign_key('fk_schedules_api_key_id_api_keys', 'schedules', 'api_keys',
                          ['api_key_id'], ['id'], ondelete='CASCADE')  # fmt: skip
    op.create_index('ix_schedules_api_key_id', 'schedules', ['api_key_id'])


def downgrade() -> None:
    op.drop_index('ix_schedules_api_key_id', table_name='schedules')
    op.drop_constraint('fk_schedules_api_key_id_api_keys', 'schedules', type_='foreignkey')
    op.drop_column('schedules', 'api_key_id')
