"""Indexes for identity linking and subject repair; messages.clean_subject

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clean_subject", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_clean_subject"), ["clean_subject"])
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commits_subject"), ["subject"])
    with op.batch_alter_table("trailers", schema=None) as batch_op:
        batch_op.create_index("ix_trailers_kind_value", ["kind", "value"])
    with op.batch_alter_table("series_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_series_versions_cover_message_id"), ["cover_message_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("series_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_versions_cover_message_id"))
    with op.batch_alter_table("trailers", schema=None) as batch_op:
        batch_op.drop_index("ix_trailers_kind_value")
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commits_subject"))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_clean_subject"))
        batch_op.drop_column("clean_subject")
