"""knowledge base: PostgreSQL full-text (GIN expression) indexes over the stored word and bigram tokens

Revision ID: 0007
Revises: 0006

SQLite has nothing to create: the embedded backend ranks in memory.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = {"ix_kb_chunks_words_fts": "word_tokens", "ix_kb_chunks_bigrams_fts": "bigram_tokens"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, column in INDEXES.items():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON kb_chunks USING gin (to_tsvector('simple', {column}))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
