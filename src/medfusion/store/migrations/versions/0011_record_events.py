"""record events: the outbox, its head row, per-subscriber checkpoints, failures and idempotency markers

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=140), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index(op.f("ix_record_events_type"), "record_events", ["type"], unique=False)
    op.create_index(op.f("ix_record_events_patient_id"), "record_events", ["patient_id"], unique=False)
    op.create_index(op.f("ix_record_events_at"), "record_events", ["at"], unique=False)
    op.create_table(
        "record_event_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO record_event_head (id, seq) VALUES (1, 0)")
    op.create_table(
        "event_checkpoints",
        sa.Column("subscriber", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscriber"),
    )
    op.create_table(
        "event_failures",
        sa.Column("subscriber", sa.String(length=100), nullable=False),
        sa.Column("event_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_seq"], ["record_events.seq"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber", "event_seq"),
    )
    op.create_index(
        op.f("ix_event_failures_next_retry_at"), "event_failures", ["next_retry_at"], unique=False
    )
    op.create_table(
        "event_applied",
        sa.Column("subscriber", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", "event_id"),
    )


def downgrade() -> None:
    op.drop_table("event_applied")
    op.drop_index(op.f("ix_event_failures_next_retry_at"), table_name="event_failures")
    op.drop_table("event_failures")
    op.drop_table("event_checkpoints")
    op.drop_table("record_event_head")
    op.drop_index(op.f("ix_record_events_at"), table_name="record_events")
    op.drop_index(op.f("ix_record_events_patient_id"), table_name="record_events")
    op.drop_index(op.f("ix_record_events_type"), table_name="record_events")
    op.drop_table("record_events")
