"""knowledge: embeddings of any model's size, with a partial HNSW index per common size

Revision ID: 0017_knowledge
Revises: 0016_invitation_secrets

`embeddings` was never written before this revision. Its vector column loses its fixed size
(the size belongs to the embedding model: 384 for all-MiniLM-L6-v2, 1536 for OpenAI's small
model); `dimensions` is generated from the vector, and each common size has a partial cosine
HNSW index over `embedding::vector(n) WHERE dimensions = n` (a query casts the same way to use
it). `kind` tells a document's chunk (`knowledge`, grouped by `document_id`) from an embedded
exchange (`exchange`); `model` names the model that made the vector.
"""

from __future__ import annotations

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op

revision = '0017_knowledge'
down_revision = '0016_invitation_secrets'
branch_labels = None
depends_on = None

INDEXED_DIMENSIONS = (384, 768, 1024, 1536)


def upgrade() -> None:
    op.drop_index('ix_embeddings_embedding_hnsw', table_name='embeddings')
    op.alter_column('embeddings', 'embedding', type_=pgvector.sqlalchemy.Vector(),
                    existing_nullable=False)
    op.add_column('embeddings', sa.Column('kind', sa.String(16), nullable=False,
                                          server_default='knowledge'))
    op.create_check_constraint(op.f('ck_embeddings_kind'), 'embeddings',
                               "kind IN ('knowledge', 'exchange')")
    op.add_column('embeddings', sa.Column('document_id', sa.Uuid(), nullable=True))
    op.add_column('embeddings', sa.Column('model', sa.String(250), nullable=False,
                                          server_default='local:all-minilm-l6-v2'))
    op.add_column('embeddings', sa.Column(
        'dimensions', sa.Integer(), sa.Computed('vector_dims(embedding)', persisted=True)))
    op.create_index('ix_embeddings_agent_document', 'embeddings', ['agent_id', 'document_id'])
    for size in INDEXED_DIMENSIONS:
        op.execute(
            f'CREATE INDEX ix_embeddings_hnsw_{size} ON embeddings USING hnsw '
            f'((embedding::vector({size})) vector_cosine_ops) WHERE dimensions = {size}'
        )


def downgrade() -> None:
    for size in INDEXED_DIMENSIONS:
        op.drop_index(f'ix_embeddings_hnsw_{size}', table_name='embeddings')
    op.drop_index('ix_embeddings_agent_document', table_name='embeddings')
    op.execute('DELETE FROM embeddings WHERE dimensions <> 384')
    for column in ('dimensions', 'model', 'document_id', 'kind'):
        op.drop_column('embeddings', column)
    op.alter_column('embeddings', 'embedding', type_=pgvector.sqlalchemy.Vector(384),
                    existing_nullable=False)
    op.create_index('ix_embeddings_embedding_hnsw', 'embeddings', ['embedding'],
                    postgresql_using='hnsw', postgresql_ops={'embedding': 'vector_cosine_ops'})
