"""agents: runs with their traces, conversation turns, and (time, event, case, person) memories

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agent_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("agent", sa.String(length=60), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("path", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("result", _JSON, nullable=False),
        sa.Column("steps", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_agent_runs_at"), "agent_runs", ["at"], unique=False)
    op.create_index(op.f("ix_agent_runs_username"), "agent_runs", ["username"], unique=False)
    op.create_index(op.f("ix_agent_runs_patient_id"), "agent_runs", ["patient_id"], unique=False)
    op.create_table(
        "agent_turns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summarised", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_agent_turns_owner"), "agent_turns", ["owner"], unique=False)
    op.create_index(op.f("ix_agent_turns_session_id"), "agent_turns", ["session_id"], unique=False)
    op.create_table(
        "agent_memories",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("time_text", sa.String(length=60), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("case_text", sa.String(length=200), nullable=False),
        sa.Column("person", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("unusual", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_agent_memories_owner"), "agent_memories", ["owner"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_memories_owner"), table_name="agent_memories")
    op.drop_table("agent_memories")
    op.drop_index(op.f("ix_agent_turns_session_id"), table_name="agent_turns")
    op.drop_index(op.f("ix_agent_turns_owner"), table_name="agent_turns")
    op.drop_table("agent_turns")
    op.drop_index(op.f("ix_agent_runs_patient_id"), table_name="agent_runs")
    op.drop_index(op.f("ix_agent_runs_username"), table_name="agent_runs")
    op.drop_index(op.f("ix_agent_runs_at"), table_name="agent_runs")
    op.drop_table("agent_runs")
