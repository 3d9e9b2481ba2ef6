"""status answers from the stored plans when nothing they read has changed since

``branch_states.step`` keeps each decision whole (the plan step as JSON: order, after, release,
...), and ``branches.plan_inputs`` a digest of what the stored plan read (the last sync run, the
prerequisites, the configuration's branches and topics), so ``status`` can tell whether the
stored decisions still stand without deciding every plan again.

Revision ID: 0009s
Revises: 0008q
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009s"
down_revision: str | None = "0008q"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("branch_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step", sa.Text(), nullable=True))
    with op.batch_alter_table("branches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_inputs", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("branches", schema=None) as batch_op:
        batch_op.drop_column("plan_inputs")
    with op.batch_alter_table("branch_states", schema=None) as batch_op:
        batch_op.drop_column("step")
