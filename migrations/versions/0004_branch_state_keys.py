"""branch_states.sha also holds -mm file names and Message-IDs (pending-upstream fixes)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("branch_states", schema=None) as batch_op:
        batch_op.alter_column(
            "sha", existing_type=sa.String(length=40), type_=sa.String(length=998)
        )


def downgrade() -> None:
    with op.batch_alter_table("branch_states", schema=None) as batch_op:
        batch_op.alter_column(
            "sha", existing_type=sa.String(length=998), type_=sa.String(length=40)
        )
