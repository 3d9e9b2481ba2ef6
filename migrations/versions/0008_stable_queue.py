"""the stable queue as a source: one row per patch file of a stable-queue clone

``queue_patches`` holds each queued patch with its place in ``series``, the ones dropped from
the queue (with the queue head that dropped them) and the files of ``releases/X.Y.Z/``, each
linked to its mainline commit by its upstream line or its stable patch-id.

Revision ID: 0008q
Revises: 0007p
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008q"
down_revision: str | None = "0007p"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_patches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("series", sa.String(length=64), nullable=False),
        sa.Column("directory", sa.String(length=256), nullable=False),
        sa.Column("filename", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("release", sa.String(length=64), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("blob", sa.String(length=40), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("upstream_sha", sa.String(length=40), nullable=True),
        sa.Column("link_rule", sa.String(length=32), nullable=True),
        sa.Column("patch_id", sa.String(length=40), nullable=True),
        sa.Column("paths_key", sa.String(length=40), nullable=True),
        sa.Column("stable_dep_of", sa.Text(), nullable=False),
        sa.Column("head", sa.String(length=40), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dropped_head", sa.String(length=40), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_queue_patches_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_patches")),
        sa.UniqueConstraint("source_id", "directory", "filename", name="uq_queue_patches_file"),
    )
    op.create_index(
        "ix_queue_patches_upstream_series",
        "queue_patches",
        ["upstream_sha", "series"],
        unique=False,
    )
    op.create_index(op.f("ix_queue_patches_patch_id"), "queue_patches", ["patch_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_queue_patches_patch_id"), table_name="queue_patches")
    op.drop_index("ix_queue_patches_upstream_series", table_name="queue_patches")
    op.drop_table("queue_patches")
