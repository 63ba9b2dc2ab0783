"""fhir_raw_resources: every FHIR resource an import received, versioned, never overwritten; and the
R4 cardinality of the chart's index columns (name, department, admission time, ICD-10 / ICD-9-CM-3 code,
observation time may be absent — issue 15 part 3)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_NULLABLE = (
    ("patients", "name", sa.String(length=64)),
    ("encounters", "department", sa.String(length=200)),
    ("encounters", "admitted_at", sa.DateTime(timezone=True)),
    ("conditions", "icd10_code", sa.String(length=40)),
    ("observations", "effective_at", sa.DateTime(timezone=True)),
    ("procedures", "icd9cm3_code", sa.String(length=20)),
)


def upgrade() -> None:
    op.create_table(
        "fhir_raw_resources",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("json", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("model_hash", sa.String(length=64), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        "ix_fhir_raw_resources_key",
        "fhir_raw_resources",
        ["patient_id", "resource_type", "resource_id", "version"],
        unique=True,
    )
    op.create_index(op.f("ix_fhir_raw_resources_patient_id"), "fhir_raw_resources", ["patient_id"])
    for table, column, type_ in _NULLABLE:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=type_, nullable=True)


def downgrade() -> None:
    for table, column, type_ in _NULLABLE:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=type_, nullable=False)
    op.drop_index(op.f("ix_fhir_raw_resources_patient_id"), table_name="fhir_raw_resources")
    op.drop_index("ix_fhir_raw_resources_key", table_name="fhir_raw_resources")
    op.drop_table("fhir_raw_resources")
