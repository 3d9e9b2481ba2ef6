"""mail on real archives: every list of a message, and the series/review pass bookkeeping

``message_lists`` records each list (or mirror) a message was seen on, so a cross-post keeps
every list. ``messages.settled`` is NULL until the series/review pass has seen the message (the
pass is crash-safe: what a dead run left unsettled is picked up by the next one). The
``in_reply_to`` and ``from_email`` indexes serve that pass (thread walks, one sender's postings);
``series_version_id`` a version's members, and deleting a version (its ON DELETE SET NULL
scanned every message without it: 80 s of a corpus regroup).

Revision ID: 0006m
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006m"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_lists",
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("list_name", sa.String(length=256), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.message_id"],
            name=op.f("fk_message_lists_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_message_lists_document_id_documents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("message_id", "list_name", name=op.f("pk_message_lists")),
    )
    op.create_index(
        op.f("ix_message_lists_list_name"), "message_lists", ["list_name"], unique=False
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settled", sa.Boolean(), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_settled"), ["settled"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_in_reply_to"), ["in_reply_to"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_from_email"), ["from_email"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_messages_series_version_id"), ["series_version_id"], unique=False
        )
    # What earlier versions recorded: one list per message.
    op.execute(
        "INSERT INTO message_lists (message_id, list_name, document_id) "
        "SELECT message_id, list_id, document_id FROM messages WHERE list_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_series_version_id"))
        batch_op.drop_index(batch_op.f("ix_messages_from_email"))
        batch_op.drop_index(batch_op.f("ix_messages_in_reply_to"))
        batch_op.drop_index(batch_op.f("ix_messages_settled"))
        batch_op.drop_column("settled")
    op.drop_index(op.f("ix_message_lists_list_name"), table_name="message_lists")
    op.drop_table("message_lists")
