"""initial schema: patients and their chart, users, hash-chained append-only audit log

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The audit log is append-only at the database level too: these triggers refuse UPDATE and DELETE.
_SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
]
_PG_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
]

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_patient_id", ["patient_id"], unique=False)
        batch_op.create_index("ix_audit_log_actor_action", ["actor", "action"], unique=False)

    op.create_table(
        "patients",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sex", sa.String(length=10), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id_number"),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patients_name"), ["name"], unique=False)

    op.create_table(
        "allergies",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", "patient_id"),
    )
    with op.batch_alter_table("allergies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allergies_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "clinical_notes",
        sa.Column("note_type", sa.String(length=20), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", "patient_id"),
    )
    with op.batch_alter_table("clinical_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clinical_notes_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "conditions",
        sa.Column("icd10_code", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", "patient_id"),
    )
    with op.batch_alter_table("conditions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conditions_icd10_code"), ["icd10_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_conditions_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "encounters",
        sa.Column("encounter_class", sa.String(length=20), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", "patient_id"),
    )
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_encounters_department"), ["department"], unique=False)
        batch_op.create_index(batch_op.f("ix_encounters_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "immunizations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", "patient_id"),
    )
    with op.batch_alter_table("immunizations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_immunizations_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "medication_requests",
        sa.Column("atc_code", sa.String(length=10), nullable=True),
        sa.Column("drug_name", sa.String(length=200), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", "patient_id"),
    )
    with op.batch_alter_table("medication_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_medication_requests_atc_code"), ["atc_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_medication_requests_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "observations",
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", "patient_id"),
    )
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_observations_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "procedures",
        sa.Column("icd9cm3_code", sa.String(length=20), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", "patient_id"),
    )
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_procedures_icd9cm3_code"), ["icd9cm3_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_procedures_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    # the chain starts at sequence 0 with the all-zero genesis hash (see medfusion.store.audit)
    op.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')")
    dialect = op.get_bind().dialect.name
    for statement in _PG_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("users")
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_procedures_patient_id"))
        batch_op.drop_index(batch_op.f("ix_procedures_icd9cm3_code"))

    op.drop_table("procedures")
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observations_patient_id"))

    op.drop_table("observations")
    with op.batch_alter_table("medication_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_medication_requests_patient_id"))
        batch_op.drop_index(batch_op.f("ix_medication_requests_atc_code"))

    op.drop_table("medication_requests")
    with op.batch_alter_table("immunizations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_immunizations_patient_id"))

    op.drop_table("immunizations")
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_encounters_patient_id"))
        batch_op.drop_index(batch_op.f("ix_encounters_department"))

    op.drop_table("encounters")
    with op.batch_alter_table("conditions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conditions_patient_id"))
        batch_op.drop_index(batch_op.f("ix_conditions_icd10_code"))

    op.drop_table("conditions")
    with op.batch_alter_table("clinical_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinical_notes_patient_id"))

    op.drop_table("clinical_notes")
    with op.batch_alter_table("allergies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allergies_patient_id"))

    op.drop_table("allergies")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patients_name"))

    op.drop_table("patients")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_patient_id")
        batch_op.drop_index("ix_audit_log_actor_action")

    op.drop_table("audit_log")
    op.drop_table("audit_head")
