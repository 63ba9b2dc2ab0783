"""patients.birth_date may be absent: R4 Patient.birthDate is 0..1 (issue 15 part 3). On SQLite the batch
rebuild runs with foreign keys off (store.database.Database.upgrade), so no chart row is cascaded away.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.alter_column("birth_date", existing_type=sa.Date(), nullable=True)


def downgrade() -> None:
    # a downgrade may not drop a patient for lacking a birth date: refuse instead of losing the row
    bind = op.get_bind()
    missing = bind.execute(sa.text("SELECT count(*) FROM patients WHERE birth_date IS NULL")).scalar()
    if missing:
        raise RuntimeError(f"{missing} patients have no birth date; 0013 cannot hold them")
    with op.batch_alter_table("patients") as batch:
        batch.alter_column("birth_date", existing_type=sa.Date(), nullable=False)
