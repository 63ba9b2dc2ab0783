"""knowledge graph: typed entities and sourced triples

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "graph_entities",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("graph_entities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_graph_entities_type"), ["type"], unique=False)
        batch_op.create_index(batch_op.f("ix_graph_entities_name"), ["name"], unique=False)
    op.create_table(
        "graph_relations",
        sa.Column("head_id", sa.String(length=32), nullable=False),
        sa.Column("relation", sa.String(length=40), nullable=False),
        sa.Column("tail_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["head_id"], ["graph_entities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tail_id"], ["graph_entities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("head_id", "relation", "tail_id", "source"),
    )
    with op.batch_alter_table("graph_relations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_graph_relations_tail_id"), ["tail_id"], unique=False)


def downgrade() -> None:
    op.drop_table("graph_relations")
    op.drop_table("graph_entities")
