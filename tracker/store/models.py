"""SQLAlchemy 2.0 typed models. The schema is created and changed only by Alembic migrations.

Shas are stored as 40-character lower-case hex strings. A *change* is one logical patch; its
incarnations (mails, -mm patches, the mainline commit, stable backports) point at it and record the
rule that linked them, because a maintainer must be able to see why tracker believes two things
are the same patch.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tracker.store.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA = String(40)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Change(Base):
    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    author_email: Mapped[str | None] = mapped_column(String(320))
    mainline_sha: Mapped[str | None] = mapped_column(SHA, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class Commit(Base):
    __tablename__ = "commits"

    sha: Mapped[str] = mapped_column(SHA, primary_key=True)
    # Indexed: Fixes: repair by quoted subject and subject+author identity links look it up.
    subject: Mapped[str] = mapped_column(Text, index=True)
    author_name: Mapped[str] = mapped_column(String(256))
    author_email: Mapped[str] = mapped_column(String(320))
    author_time: Mapped[int] = mapped_column(Integer)
    commit_time: Mapped[int] = mapped_column(Integer)
    # Full messages are kept only where tracker reasons over them (fixes, topic and stable commits);
    # a 1.3M-commit history would otherwise cost gigabytes for text nobody reads.
    message: Mapped[str | None] = mapped_column(Text)
    mainline: Mapped[bool] = mapped_column(Boolean, default=False)
    # Position in mainline's first-parent-agnostic topological order (oldest = 1); orders plans.
    mainline_order: Mapped[int | None] = mapped_column(Integer, index=True)
    first_release: Mapped[str | None] = mapped_column(String(64))
    release_index: Mapped[int | None] = mapped_column(Integer)
    patch_id: Mapped[str | None] = mapped_column(SHA, index=True)
    # tracker.pathkey of the paths the diff touches ("" for none, NULL not yet known): only
    # commits whose key equals a seeker's can share its patch-id, so only those get one.
    paths_key: Mapped[str | None] = mapped_column(String(40), index=True)
    upstream_sha: Mapped[str | None] = mapped_column(SHA, index=True)
    upstream_rule: Mapped[str | None] = mapped_column(String(32))
    is_revert: Mapped[bool] = mapped_column(Boolean, default=False)
    change_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id"), index=True)
    link_rule: Mapped[str | None] = mapped_column(String(32))


class CommitTopic(Base):
    __tablename__ = "commit_topics"

    sha: Mapped[str] = mapped_column(
        ForeignKey("commits.sha", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    rule: Mapped[str] = mapped_column(String(128))


class Trailer(Base):
    """A reference exactly as written in a commit or mail; edges are derived from these."""

    __tablename__ = "trailers"
    # "Which commit's Link: names this Message-ID?" is the strongest identity rule. Lookups by
    # kind alone use the prefix of the first index; "this commit's Cc: stable" the second, which
    # answers from the index alone (a kind-only index misled SQLite into walking every Cc: stable
    # of the history for each probe).
    __table_args__ = (
        Index("ix_trailers_kind_value", "kind", "value"),
        Index("ix_trailers_commit_sha_kind", "commit_sha", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commit_sha: Mapped[str | None] = mapped_column(ForeignKey("commits.sha", ondelete="CASCADE"))
    message_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.message_id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class Edge(Base):
    """A resolved relation between two commits (or a commit and a message), with its evidence."""

    __tablename__ = "edges"
    __table_args__ = (UniqueConstraint("kind", "src", "dst_raw", name="uq_edges_kind_src_dst"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    src: Mapped[str] = mapped_column(String(998), index=True)
    dst_raw: Mapped[str] = mapped_column(String(998))
    dst: Mapped[str | None] = mapped_column(String(998), index=True)
    rule: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)


class Tag(Base):
    __tablename__ = "tags"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    sha: Mapped[str] = mapped_column(SHA)
    kind: Mapped[str] = mapped_column(String(16))
    branch: Mapped[str | None] = mapped_column(String(128))
    ordinal: Mapped[int] = mapped_column(Integer)


class Branch(Base):
    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    base_tag: Mapped[str] = mapped_column(String(128))
    base_sha: Mapped[str | None] = mapped_column(SHA)
    base_release_index: Mapped[int | None] = mapped_column(Integer)
    head_sha: Mapped[str | None] = mapped_column(SHA)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class BranchCommit(Base):
    """A commit on a stable branch after its base tag, in branch order."""

    __tablename__ = "branch_commits"

    branch_id: Mapped[int] = mapped_column(
        ForeignKey("branches.id", ondelete="CASCADE"), primary_key=True
    )
    sha: Mapped[str] = mapped_column(ForeignKey("commits.sha"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    release: Mapped[str | None] = mapped_column(String(128))


class BranchState(Base):
    """The latest decision for one change on one branch, as computed by the planner."""

    __tablename__ = "branch_states"

    branch_id: Mapped[int] = mapped_column(
        ForeignKey("branches.id", ondelete="CASCADE"), primary_key=True
    )
    # A mainline sha, or for a fix not yet upstream its -mm file name or Message-ID.
    sha: Mapped[str] = mapped_column(String(998), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    position: Mapped[int | None] = mapped_column(Integer)
    simulation: Mapped[str | None] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(998), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    author_email: Mapped[str | None] = mapped_column(String(320))
    latest_version: Mapped[int] = mapped_column(Integer, default=1)


class SeriesVersion(Base):
    __tablename__ = "series_versions"
    __table_args__ = (UniqueConstraint("series_id", "version", name="uq_series_versions_sv"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    cover_message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    total: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class Message(Base):
    __tablename__ = "messages"

    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    # The subject without [PATCH ...] tags, as a commit would carry it (identity by subject).
    clean_subject: Mapped[str | None] = mapped_column(Text, index=True)
    from_name: Mapped[str | None] = mapped_column(String(256))
    # Indexed: the series pass loads one sender's postings and walks threads downwards.
    from_email: Mapped[str | None] = mapped_column(String(320), index=True)
    date: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    in_reply_to: Mapped[str | None] = mapped_column(String(998), index=True)
    # The first list the message was seen on; message_lists has every one.
    list_id: Mapped[str | None] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    # Indexed: a version's members, and its ON DELETE SET NULL when the series pass regroups.
    series_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("series_versions.id", ondelete="SET NULL"), index=True
    )
    series_index: Mapped[int | None] = mapped_column(Integer)
    patch_id: Mapped[str | None] = mapped_column(SHA, index=True)
    # As commits.paths_key, for the diff the patch-id was computed from.
    paths_key: Mapped[str | None] = mapped_column(String(40))
    change_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id"), index=True)
    link_rule: Mapped[str | None] = mapped_column(String(32))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    # NULL until the series/review pass has seen this message (see tracker.ingest.series).
    settled: Mapped[bool | None] = mapped_column(Boolean, index=True)


class MessageList(Base):
    """One list (or mirror) a message was seen on: a cross-post is one message, many lists."""

    __tablename__ = "message_lists"

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.message_id", ondelete="CASCADE"), primary_key=True
    )
    list_name: Mapped[str] = mapped_column(String(256), primary_key=True, index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))


class MmPatch(Base):
    __tablename__ = "mm_patches"

    filename: Mapped[str] = mapped_column(String(512), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(64))
    change_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id"), index=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class MmState(Base):
    __tablename__ = "mm_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(ForeignKey("mm_patches.filename", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)


class StableEvent(Base):
    """What the stable team said about an upstream commit: queued, failed, review, dropped."""

    __tablename__ = "stable_events"
    __table_args__ = (
        UniqueConstraint("message_id", "upstream_sha", name="uq_stable_events_msg_sha"),
        Index("ix_stable_events_sha_branch", "upstream_sha", "branch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    branch: Mapped[str] = mapped_column(String(64))
    upstream_sha: Mapped[str] = mapped_column(SHA)
    message_id: Mapped[str] = mapped_column(String(998))
    at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    details: Mapped[str] = mapped_column(Text, default="{}")


class Source(Base):
    """A place tracker reads from, with the cursor that makes the next run incremental."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(512))
    last_modified: Mapped[str | None] = mapped_column(String(128))
    cursor: Mapped[str | None] = mapped_column(Text)
    last_success: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class Document(Base):
    """A raw fetched document, zlib-compressed, so parsers can be re-run without fetching."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    key: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str | None] = mapped_column(String(128))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str | None] = mapped_column(Text)


class SyncRun(Base):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(256), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    added: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class BranchPrerequisite(Base):
    """A commit that must precede a fix on one branch, verified by simulation (or by hand)."""

    __tablename__ = "branch_prerequisites"

    branch_id: Mapped[int] = mapped_column(
        ForeignKey("branches.id", ondelete="CASCADE"), primary_key=True
    )
    fix_sha: Mapped[str] = mapped_column(SHA, primary_key=True)
    prerequisite_sha: Mapped[str] = mapped_column(SHA, primary_key=True)
    evidence: Mapped[str] = mapped_column(Text)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class QueuePatch(Base):
    """One patch file of a stable-queue clone: queued (with its place in ``series``), dropped
    (left ``series`` without a release; ``dropped_head`` is the queue head that dropped it) or
    released (a file of ``releases/X.Y.Z/``).

    ``upstream_sha`` is the mainline commit it backports, found by its upstream line
    (``link_rule`` "upstream-line") or by its stable patch-id ("patch-id"); NULL with ``error``
    saying why when neither names a commit yet (a later sync links it once the commit is known).
    """

    __tablename__ = "queue_patches"
    __table_args__ = (
        UniqueConstraint("source_id", "directory", "filename", name="uq_queue_patches_file"),
        Index("ix_queue_patches_upstream_series", "upstream_sha", "series"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    # The stable series ("6.12") the directory belongs to.
    series: Mapped[str] = mapped_column(String(64))
    # "queue-6.12" or "releases/6.12.24".
    directory: Mapped[str] = mapped_column(String(256))
    filename: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))
    release: Mapped[str | None] = mapped_column(String(64))
    position: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int | None] = mapped_column(Integer)
    # The file's git blob: an unchanged file is not read again, and mails quote it from here.
    blob: Mapped[str | None] = mapped_column(SHA)
    subject: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    upstream_sha: Mapped[str | None] = mapped_column(SHA)
    link_rule: Mapped[str | None] = mapped_column(String(32))
    patch_id: Mapped[str | None] = mapped_column(SHA, index=True)
    # tracker.pathkey of the diff, for a patch with no upstream line: mainline commits with the
    # same key get a patch-id computed so that this patch can link by it.
    paths_key: Mapped[str | None] = mapped_column(String(40))
    # JSON list of [sha, subject] from the patch's Stable-dep-of: lines.
    stable_dep_of: Mapped[str] = mapped_column(Text, default="[]")
    # The queue head at which the patch entered its current state, and that commit's time.
    head: Mapped[str] = mapped_column(SHA)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    dropped_head: Mapped[str | None] = mapped_column(SHA)
    error: Mapped[str | None] = mapped_column(Text)
