"""trailers: one (commit_sha, kind) index in place of the commit_sha and kind ones

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trailers", schema=None) as batch_op:
        batch_op.create_index("ix_trailers_commit_sha_kind", ["commit_sha", "kind"])
        batch_op.drop_index("ix_trailers_commit_sha")
        batch_op.drop_index("ix_trailers_kind")


def downgrade() -> None:
    with op.batch_alter_table("trailers", schema=None) as batch_op:
        batch_op.create_index("ix_trailers_kind", ["kind"])
        batch_op.create_index("ix_trailers_commit_sha", ["commit_sha"])
        batch_op.drop_index("ix_trailers_commit_sha_kind")
