"""knowledge packs; entity codes (ICD-10, ATC, ICD-9-CM-3 …); per-triple review status, note and pack

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_packs",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("licence", sa.String(length=200), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("graph_entities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code_system", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("code", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_graph_entities_code"), ["code"], unique=False)
    with op.batch_alter_table("graph_relations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_status", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("pack", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_graph_relations_pack"), ["pack"], unique=False)
    with op.batch_alter_table("kb_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pack", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_kb_documents_pack"), ["pack"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kb_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_documents_pack"))
        batch_op.drop_column("pack")
    with op.batch_alter_table("graph_relations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_graph_relations_pack"))
        batch_op.drop_column("pack")
        batch_op.drop_column("note")
        batch_op.drop_column("review_status")
    with op.batch_alter_table("graph_entities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_graph_entities_code"))
        batch_op.drop_column("code")
        batch_op.drop_column("code_system")
    op.drop_table("kb_packs")
