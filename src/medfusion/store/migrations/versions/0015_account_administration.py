"""users: account administration (issue 16) — ``token_version`` (raised by a forced sign-out, a password
reset or a disable: every token issued under an older version stops working), ``must_change_password`` (a
temporary password set by an administrator) and ``unlocked_at`` (failed sign-ins before it no longer count
towards a lockout).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column("must_change_password", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch.add_column(sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("unlocked_at")
        batch.drop_column("must_change_password")
        batch.drop_column("token_version")
