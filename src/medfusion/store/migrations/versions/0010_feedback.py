"""feedback: clinicians' accept/edit/reject acts, per-question, per-passage feedback for retrieval, run status

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("agent_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "status", sa.String(length=40), nullable=False, server_default="needs_clinician_confirmation"
            )
        )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("draft", sa.Text(), nullable=False),
        sa.Column("edited", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("passages", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_feedback_at"), "feedback", ["at"], unique=False)
    op.create_index(op.f("ix_feedback_username"), "feedback", ["username"], unique=False)
    op.create_index(op.f("ix_feedback_run_id"), "feedback", ["run_id"], unique=False)
    op.create_index(op.f("ix_feedback_patient_id"), "feedback", ["patient_id"], unique=False)
    op.create_table(
        "kb_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chunk_id", sa.String(length=64), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("grams", _JSON, nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_kb_feedback_chunk_id"), "kb_feedback", ["chunk_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_kb_feedback_chunk_id"), table_name="kb_feedback")
    op.drop_table("kb_feedback")
    op.drop_index(op.f("ix_feedback_patient_id"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_run_id"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_username"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_at"), table_name="feedback")
    op.drop_table("feedback")
    with op.batch_alter_table("agent_runs", schema=None) as batch_op:
        batch_op.drop_column("status")
