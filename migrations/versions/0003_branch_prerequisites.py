"""branch_prerequisites: simulator-verified prerequisites per branch

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "branch_prerequisites",
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("fix_sha", sa.String(length=40), nullable=False),
        sa.Column("prerequisite_sha", sa.String(length=40), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_branch_prerequisites_branch_id_branches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "branch_id", "fix_sha", "prerequisite_sha", name=op.f("pk_branch_prerequisites")
        ),
    )


def downgrade() -> None:
    op.drop_table("branch_prerequisites")
