"""monthly range partitions of execution_events (by run creation) and embeddings (by creation)

Revision ID: 0019_partitions
Revises: 0018_schedules

Each table is rebuilt as a partitioned table with the same columns, constraint and index names
(pasar_core.storage.partitions says why these two, and why not executions): one partition per
month from its oldest row's month to three months ahead, and a DEFAULT partition. The primary
keys gain the partition key (PostgreSQL requires it): `(id, execution_created_at)` and
`(id, created_at)`; the unique `(execution_id, seq)` becomes `(execution_id, seq,
execution_created_at)`, the same rows, since every event of a run has its run's creation time.
The rows are copied in the migration's transaction (the tables are locked meanwhile).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0019_partitions'
down_revision = '0018_schedules'
branch_labels = None
depends_on = None
CONTRACT = True
"""A contract step (docs/deploy.md "Expand, then contract"): upgrade with the previous release
stopped; tests/database/test_expand_only.py holds every later migration to expand-only."""

INDEXED_DIMENSIONS = (384, 768, 1024, 1536)
MONTHS_AHEAD = 3


def _month(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return start.replace(year=index // 12, month=index % 12 + 1)


def _partitions(table: str, oldest: datetime | None) -> None:
    now = _month(datetime.now(UTC))
    start = min(_month(oldest), now) if oldest is not None else now
    end = _add_months(now, MONTHS_AHEAD)
    while start <= end:
        following = _add_months(start, 1)
        op.execute(
            f"CREATE TABLE {table}_p{start:%Y_%m} PARTITION OF {table} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{following.isoformat()}')"
        )
        start = following
    op.execute(f'CREATE TABLE {table}_default PARTITION OF {table} DEFAULT')


def _oldest(sql: str) -> datetime | None:
    value = op.get_bind().execute(sa.text(sql)).scalar()
    return value if isinstance(value, datetime) else None


def upgrade() -> None:
    op.execute('LOCK TABLE executions, execution_events, embeddings IN SHARE MODE')
    # -- execution_events, by its run's creation time
    op.execute('ALTER TABLE execution_events RENAME TO execution_events_unpartitioned')
    op.execute(
        'CREATE TABLE execution_events (LIKE execution_events_unpartitioned INCLUDING DEFAULTS '
        'INCLUDING CONSTRAINTS, execution_created_at timestamp with time zone NOT NULL) '
        'PARTITION BY RANGE (execution_created_at)'
    )
    op.execute('ALTER SEQUENCE execution_events_id_seq OWNED BY execution_events.id')
    _partitions('execution_events', _oldest('SELECT min(created_at) FROM executions x WHERE '
                                            'EXISTS (SELECT 1 FROM execution_events_unpartitioned '
                                            'e WHERE e.execution_id = x.id)'))
    op.execute(
        'INSERT INTO execution_events (id, execution_id, seq, type, data, created_at, '
        'execution_created_at) SELECT e.id, e.execution_id, e.seq, e.type, e.data, '
        'e.created_at, x.created_at FROM execution_events_unpartitioned e '
        'JOIN executions x ON x.id = e.execution_id'
    )
    op.execute('DROP TABLE execution_events_unpartitioned')
    op.execute('ALTER TABLE execution_events ADD CONSTRAINT pk_execution_events '
               'PRIMARY KEY (id, execution_created_at)')
    op.execute('CREATE UNIQUE INDEX uq_execution_events_execution_seq ON execution_events '
               '(execution_id, seq, execution_created_at)')
    op.execute('ALTER TABLE execution_events ADD CONSTRAINT '
               'fk_execution_events_execution_id_executions FOREIGN KEY (execution_id) '
               'REFERENCES executions (id) ON DELETE CASCADE')

    # -- embeddings, by creation time
    op.execute('ALTER TABLE embeddings RENAME TO embeddings_unpartitioned')
    op.execute(
        'CREATE TABLE embeddings (LIKE embeddings_unpartitioned INCLUDING DEFAULTS '
        'INCLUDING CONSTRAINTS INCLUDING GENERATED) PARTITION BY RANGE (created_at)'
    )
    _partitions('embeddings', _oldest('SELECT min(created_at) FROM embeddings_unpartitioned'))
    op.execute(
        'INSERT INTO embeddings (id, user_id, agent_id, content, metadata, embedding, '
        'created_at, kind, document_id, model) SELECT id, user_id, agent_id, content, '
        'metadata, embedding, created_at, kind, document_id, model FROM embeddings_unpartitioned'
    )
    op.execute('DROP TABLE embeddings_unpartitioned')
    op.execute('ALTER TABLE embeddings ADD CONSTRAINT pk_embeddings PRIMARY KEY (id, created_at)')
    op.execute('CREATE INDEX ix_embeddings_agent_id ON embeddings (agent_id)')
    op.execute('CREATE INDEX ix_embeddings_agent_document ON embeddings (agent_id, document_id)')
    for size in INDEXED_DIMENSIONS:
        op.execute(
            f'CREATE INDEX ix_embeddings_hnsw_{size} ON embeddings USING hnsw '
            f'((embedding::vector({size})) vector_cosine_ops) WHERE dimensions = {size}'
        )
    op.execute('ALTER TABLE embeddings ADD CONSTRAINT fk_embeddings_agent_id_agents FOREIGN KEY '
               '(agent_id) REFERENCES agents (id) ON DELETE CASCADE')
    op.execute('ALTER TABLE embeddings ADD CONSTRAINT fk_embeddings_user_id_users FOREIGN KEY '
               '(user_id) REFERENCES users (id) ON DELETE CASCADE')


def downgrade() -> None:
    for table in ('execution_events', 'embeddings'):
        op.execute(f'ALTER TABLE {table} RENAME TO {table}_partitioned')
        op.execute(f'CREATE TABLE {table} (LIKE {table}_partitioned INCLUDING DEFAULTS '
                   'INCLUDING CONSTRAINTS INCLUDING GENERATED)')
    op.execute('ALTER TABLE execution_events DROP COLUMN execution_created_at')
    op.execute('ALTER SEQUENCE execution_events_id_seq OWNED BY execution_events.id')
    op.execute('INSERT INTO execution_events (id, execution_id, seq, type, data, created_at) '
               'SELECT id, execution_id, seq, type, data, created_at '
               'FROM execution_events_partitioned')
    op.execute('INSERT INTO embeddings (id, user_id, agent_id, content, metadata, embedding, '
               'created_at, kind, document_id, model) SELECT id, user_id, agent_id, content, '
               'metadata, embedding, created_at, kind, document_id, model '
               'FROM embeddings_partitioned')
    op.execute('DROP TABLE execution_events_partitioned')
    op.execute('DROP TABLE embeddings_partitioned')
    op.execute('ALTER TABLE execution_events ADD CONSTRAINT pk_execution_events PRIMARY KEY (id)')
    op.execute('CREATE UNIQUE INDEX uq_execution_events_execution_seq ON execution_events '
               '(execution_id, seq)')
    op.execute('ALTER TABLE execution_events ADD CONSTRAINT '
               'fk_execution_events_execution_id_executions FOREIGN KEY (execution_id) '
               'REFERENCES executions (id) ON DELETE CASCADE')
    op.execute('ALTER TABLE embeddings ADD CONSTRAINT pk_embeddings PRIMARY KEY (id)')
    op.execute('CREATE INDEX ix_embeddings_agent_id ON embeddings (agent_id)')
    op.execute('CREATE INDEX ix_embeddings_agent_document ON embeddings (agent_id, document_id)')
    for size in INDEXED_DIMENSIONS:
        op.execute(
            f'CREATE INDEX ix_embeddings_hnsw_{size} ON embeddings USING hnsw '
            f'((embedding::vector({size})) vector_cosine_ops) WHERE dimensions = {size}'
        )
    op.execute('ALTER TABLE embeddings ADD CONSTRAINT fk_embeddings_agent_id_agents FOREIGN KEY '
               '(agent_id) REFERENCES agents (id) ON DELETE CASCADE')
    op.execute('ALTER TABLE embeddings ADD CONSTRAINT fk_embeddings_user_id_users FOREIGN KEY '
               '(user_id) REFERENCES users (id) ON DELETE CASCADE')
