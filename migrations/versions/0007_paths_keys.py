"""commits.paths_key and messages.paths_key: which commits can share a patch-id

A patch-id is computed only for a mainline commit whose key (the set of paths its diff touches)
equals that of a stable commit without an upstream reference or of a mail waiting to be linked;
an all-paths topic no longer makes every commit of the history pay for one. Rows from before
this revision keep NULL: the sync computes the keys it needs from git, and from the stored
documents for mail.

Revision ID: 0007p
Revises: 0006m
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007p"
down_revision: str | None = "0006m"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paths_key", sa.String(length=40), nullable=True))
        batch_op.create_index("ix_commits_paths_key", ["paths_key"])
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paths_key", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("paths_key")
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.drop_index("ix_commits_paths_key")
        batch_op.drop_column("paths_key")
