"""A stable branch's release tags, and the release that first shipped each of its commits.

Read and stored in two steps: reading (which tags are new, and their commits, a ``git
rev-list`` each) writes nothing, so a first sync runs it for every branch while SQLite builds
the indexes the load deferred (see ``GitSync._sync_commits``); storing follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update

from tracker.config import BranchConfig
from tracker.gitio import GitRepo
from tracker.ingest.releases import release_commits, release_tags
from tracker.store.db import Store
from tracker.store.models import Branch, BranchCommit, Tag
from tracker.store.queries import chunked, on_sqlite, sqlite_executemany


@dataclass(frozen=True)
class NewTags:
    branch_id: int
    restart: bool  # the stored tags are not a prefix of git's: they are dropped first
    # (ordinal, name, commit sha, the branch commits it is the first release of)
    tags: list[tuple[int, str, str, list[str]]]


def read_new_tags(store: Store, repo: GitRepo, b: BranchConfig) -> NewTags:
    """The tags of ``b`` not stored yet, with their commits; the store is only read."""
    wanted = release_tags(repo, b.stable_tag_pattern)
    with store.session() as s:
        branch = s.scalar(select(Branch).where(Branch.name == b.name))
        assert branch is not None
        branch_id, base_sha = branch.id, branch.base_sha or ""
        known = [
            (t.name, t.sha)
            for t in s.scalars(
                select(Tag).where(Tag.kind == "stable", Tag.branch == b.name).order_by(Tag.ordinal)
            )
        ]
    restart = wanted[: len(known)] != known
    start = 0 if restart else len(known)
    return NewTags(branch_id, restart, list(release_commits(repo, wanted, start, [base_sha])))


def store_new_tags(store: Store, b: BranchConfig, new: NewTags) -> int:
    """Record ``new`` in one transaction (a first sync's hundred commits, each a WAL
    checkpoint, cost more than the updates); how many tags were added."""
    with store.session() as s:
        if new.restart:
            s.execute(delete(Tag).where(Tag.kind == "stable", Tag.branch == b.name))
            s.execute(
                update(BranchCommit)
                .where(BranchCommit.branch_id == new.branch_id)
                .values(release=None)
            )
        for i, name, sha, shas in new.tags:
            if on_sqlite(s):
                sqlite_executemany(
                    s,
                    "UPDATE branch_commits SET release = ? "
                    "WHERE branch_id = ? AND sha = ? AND release IS NULL",
                    [(name, new.branch_id, c) for c in shas],
                )
            else:
                for chunk in chunked(shas):
                    s.execute(
                        update(BranchCommit)
                        .where(
                            BranchCommit.branch_id == new.branch_id,
                            BranchCommit.sha.in_(chunk),
                            BranchCommit.release.is_(None),
                        )
                        .values(release=name)
                    )
            s.add(Tag(name=name, sha=sha, kind="stable", branch=b.name, ordinal=i))
    return len(new.tags)
