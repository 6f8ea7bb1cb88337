"""an index on executions.created_at

Revision ID: 0023_exec_created_idx
Revises: 0020_inviter_cascade

The retention pass checks a month of runs by `created_at` while it holds the lock that drops
that month's event partition: without an index the check read the whole table under the lock.
Built `CONCURRENTLY` (writes go on meanwhile), outside the migration's transaction; a session
advisory lock keeps other starting processes out of the migrations until the version is stamped.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = '0023_exec_created_idx'
down_revision = '0020_inviter_cascade'
branch_labels = None
depends_on = None

INDEX = 'ix_executions_created'
MIGRATION_LOCK_ID = 0x70617361  # env.py's: its transaction lock ends with the commit below


def _outside_the_transaction(statements: list[str]) -> None:
    bind = op.get_bind()
    bind.execute(text('SELECT pg_advisory_lock(:id)'), {'id': MIGRATION_LOCK_ID})
    with op.get_context().autocommit_block():
        for statement in statements:
            op.execute(statement)
    bind.execute(text('SELECT pg_advisory_xact_lock(:id)'), {'id': MIGRATION_LOCK_ID})
    bind.execute(text('SELECT pg_advisory_unlock(:id)'), {'id': MIGRATION_LOCK_ID})


def upgrade() -> None:
    invalid = op.get_bind().scalar(text(
        'SELECT NOT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(:name)'
    ), {'name': INDEX})  # fmt: skip
    statements = [f'DROP INDEX CONCURRENTLY IF EXISTS {INDEX}'] if invalid else []
    statements.append(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON executions (created_at)')
    _outside_the_transaction(statements)  # an interrupted build leaves an invalid index: rebuilt


def downgrade() -> None:
    _outside_the_transaction([f'DROP INDEX CONCURRENTLY IF EXISTS {INDEX}'])
