"""an index on executions.created_at

Revision ID: 0025_exec_created_idx
Revises: 0024_schedule_api_key

The retention pass checks a month of runs by `created_at` while it holds the lock that drops
that month's event partition: without an index the check read the whole table under the lock.

Built inside the migration's transaction, not `CONCURRENTLY`: the migrations run under a
transaction-level advisory lock that other starting processes wait for inside their own
transactions, and a concurrent build waits for every transaction older than it: they would
wait for each other. The build holds writes to `executions` while it runs; on a large table build it
beforehand, online (docs/database.md), and this migration finds it there.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = '0025_exec_created_idx'
down_revision = '0024_schedule_api_key'
branch_labels = None
depends_on = None

INDEX = 'ix_executions_created'


def upgrade() -> None:
    bind = op.get_bind()
    valid = bind.scalar(text(
        'SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(:name)'
    ), {'name': INDEX})  # fmt: skip
    if valid is False:  # an interrupted CONCURRENTLY build by the operator: build it again
        op.drop_index(INDEX, table_name='executions')
    op.create_index(INDEX, 'executions', ['created_at'], if_not_exists=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name='executions')
