"""knowledge base: documents, deduplicated chunks with their sparse tokens, chunk positions

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_documents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("doc_type", sa.String(length=20), nullable=False),
        sa.Column("authority", sa.String(length=10), nullable=False),
        sa.Column("publisher", sa.String(length=200), nullable=True),
        sa.Column("published", sa.Date(), nullable=True),
        sa.Column("department", sa.String(length=100), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source"),
    )
    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("norm_hash", sa.String(length=32), nullable=False),
        sa.Column("word_tokens", sa.Text(), nullable=False),
        sa.Column("bigram_tokens", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kb_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_chunks_norm_hash"), ["norm_hash"], unique=False)
    op.create_table(
        "kb_chunk_refs",
        sa.Column("chunk_id", sa.String(length=32), nullable=False),
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("start", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["kb_chunks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["kb_documents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("chunk_id", "document_id", "start"),
    )
    with op.batch_alter_table("kb_chunk_refs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_chunk_refs_document_id"), ["document_id"], unique=False)


def downgrade() -> None:
    op.drop_table("kb_chunk_refs")
    op.drop_table("kb_chunks")
    op.drop_table("kb_documents")
