"""resource versions: a version number on demographics and every chart resource, soft delete on chart
resources, ``resource_versions`` — every version of every resource, who wrote it, when, why — and
``patient_identifiers`` (system, value) → patient, so an import matches a person by MRN or 医保号

Existing rows become version 1 and get their version-1 history row (actor ``migration:0012``); stored
Patient identifiers are indexed (the first patient holding a (system, value) keeps it).

Revision ID: 0012
Revises: 0011
"""

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# chart part → table (the chart parts of medfusion.record.models.CHILD_KINDS, as of this revision)
_CHART_TABLES = {
    "encounters": "encounters",
    "conditions": "conditions",
    "observations": "observations",
    "procedures": "procedures",
    "medications": "medication_requests",
    "allergies": "allergies",
    "immunizations": "immunizations",
    "notes": "clinical_notes",
}


def upgrade() -> None:
    op.create_table(
        "resource_versions",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changes", _JSON, nullable=False),
        sa.Column("body", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("patient_id", "kind", "resource_id", "version"),
    )
    op.create_table(
        "patient_identifiers",
        sa.Column("system", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("system", "value"),
    )
    op.create_index(
        op.f("ix_patient_identifiers_patient_id"), "patient_identifiers", ["patient_id"], unique=False
    )
    # plain ALTER TABLE … ADD COLUMN, never batch mode: on SQLite a batch "move and copy" of ``patients``
    # drops the old table, and with foreign_keys=ON its ON DELETE CASCADE empties every chart table
    op.add_column("patients", sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False))
    for table in _CHART_TABLES.values():
        op.add_column(table, sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False))
        op.add_column(table, sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    # what the record already holds is its version 1
    op.execute(
        "INSERT INTO resource_versions "
        "(patient_id, kind, resource_id, version, action, at, actor, source, reason, changes, body) "
        "SELECT id, 'patient', id, 1, 'created', updated_at, 'migration:0012', 'migration', NULL, "
        "'[]', body FROM patients"
    )
    for kind, table in _CHART_TABLES.items():
        op.execute(
            "INSERT INTO resource_versions "
            "(patient_id, kind, resource_id, version, action, at, actor, source, reason, changes, body) "
            f"SELECT c.patient_id, '{kind}', c.id, 1, 'created', p.updated_at, 'migration:0012', "
            f"'migration', NULL, '[]', c.body FROM {table} c JOIN patients p ON p.id = c.patient_id"
        )
    _index_identifiers()


def _index_identifiers() -> None:
    """(system, value) of every stored Patient identifier kept in ``body.fhir_extra.identifier``."""
    bind = op.get_bind()
    seen: set[tuple[str, str]] = set()
    rows = []
    for patient_id, body in bind.execute(sa.text("SELECT id, body FROM patients ORDER BY id")):
        data = json.loads(body) if isinstance(body, str) else body
        for item in (data.get("fhir_extra") or {}).get("identifier") or []:
            if not isinstance(item, dict) or not item.get("system") or item.get("value") is None:
                continue
            key = (str(item["system"])[:200], str(item["value"])[:100])
            if key not in seen:
                seen.add(key)
                rows.append({"system": key[0], "value": key[1], "patient_id": patient_id})
    if rows:
        bind.execute(
            sa.text(
                "INSERT INTO patient_identifiers (system, value, patient_id) "
                "VALUES (:system, :value, :patient_id)"
            ),
            rows,
        )


def downgrade() -> None:
    for table in _CHART_TABLES.values():  # ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35), no table copy
        op.drop_column(table, "deleted_at")
        op.drop_column(table, "version")
    op.drop_column("patients", "version")
    op.drop_index(op.f("ix_patient_identifiers_patient_id"), table_name="patient_identifiers")
    op.drop_table("patient_identifiers")
    op.drop_table("resource_versions")
