"""Load the plain values :mod:`tracker.plan` decides over, touching only what a plan needs.

At kernel scale the store holds over a million commits; a plan reads the branch's own commits,
the topic fixes after its base, and the commits those fixes name, never the whole history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tracker.config import BranchConfig
from tracker.errors import NotSyncedError
from tracker.plan import (
    BranchCommitInfo,
    BranchView,
    CommitInfo,
    Fix,
    FixRef,
    Nomination,
    Prerequisite,
    World,
)
from tracker.store.models import (
    Branch,
    BranchCommit,
    BranchPrerequisite,
    Commit,
    CommitTopic,
    Edge,
    Trailer,
)
from tracker.store.queries import chunked


def commit_info(c: Commit) -> CommitInfo:
    return CommitInfo(
        sha=c.sha,
        subject=c.subject,
        mainline=c.mainline,
        release=c.first_release,
        release_index=c.release_index,
        order=c.mainline_order,
    )


def _version(text: str) -> tuple[int, int] | None:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def load_branch(s: Session, cfg: BranchConfig) -> BranchView:
    row = s.scalar(select(Branch).where(Branch.name == cfg.name))
    if row is None or row.base_release_index is None:
        raise NotSyncedError(f"branch '{cfg.name}' has not been synced yet; run 'tracker sync'")
    rows = s.execute(
        select(BranchCommit, Commit)
        .join(Commit, Commit.sha == BranchCommit.sha)
        .where(BranchCommit.branch_id == row.id)
        .order_by(BranchCommit.position)
    ).all()
    shas = [c.sha for _, c in rows]
    reverts: dict[str, list[str]] = {}
    for chunk in chunked(shas):
        for src, _kind, value in s.execute(
            select(Trailer.commit_sha, Trailer.kind, Trailer.value).where(
                Trailer.commit_sha.in_(chunk), Trailer.kind.in_(("reverts", "reverts-upstream"))
            )
        ):
            assert src is not None
            reverts.setdefault(src, []).append(value)
    # Reverts name commits by (possibly abbreviated) sha; resolve against the branch and mainline.
    by_prefix = {sha: sha for sha in shas}
    commits = tuple(
        BranchCommitInfo(
            sha=c.sha,
            subject=c.subject,
            position=bc.position,
            release=bc.release,
            upstream=c.upstream_sha,
            upstream_rule=c.upstream_rule,
            reverts=tuple(_expand(s, v, by_prefix) for v in reverts.get(c.sha, [])),
        )
        for bc, c in rows
    )
    return BranchView(
        name=cfg.name,
        base=cfg.base,
        base_index=row.base_release_index,
        version=_version(cfg.version),
        commits=commits,
    )


def _expand(s: Session, value: str, known: dict[str, str]) -> str:
    if len(value) == 40:
        return value
    for sha in known:
        if sha.startswith(value):
            return sha
    hit = s.scalars(select(Commit.sha).where(Commit.sha >= value, Commit.sha < value + "g")).all()
    return hit[0] if len(hit) == 1 else value


def load_fixes(
    s: Session, base_index: int, topic_order: Sequence[str], topic: str | None = None
) -> list[Fix]:
    """Topic commits after the base release that carry Fixes: or Cc: stable."""
    tagged = select(Trailer.commit_sha).where(Trailer.kind.in_(("fixes", "cc-stable")))
    topic_q = select(CommitTopic.sha)
    if topic:
        topic_q = topic_q.where(CommitTopic.topic == topic)
    rows = list(
        s.scalars(
            select(Commit).where(
                Commit.mainline.is_(True),
                or_(Commit.release_index.is_(None), Commit.release_index > base_index),
                Commit.sha.in_(tagged),
                Commit.sha.in_(topic_q),
            )
        )
    )
    shas = [c.sha for c in rows]
    topics: dict[str, list[str]] = {}
    edges: dict[str, list[FixRef]] = {}
    noms: dict[str, list[Nomination]] = {}
    for chunk in chunked(shas):
        for sha, t in s.execute(
            select(CommitTopic.sha, CommitTopic.topic).where(CommitTopic.sha.in_(chunk))
        ):
            topics.setdefault(sha, []).append(t)
        for e in s.scalars(select(Edge).where(Edge.kind == "fixes", Edge.src.in_(chunk))):
            edges.setdefault(e.src, []).append(
                FixRef(
                    raw=e.dst_raw, dst=e.dst, rule=e.rule, evidence=e.evidence, flagged=e.flagged
                )
            )
        for tr in s.scalars(
            select(Trailer).where(Trailer.kind == "cc-stable", Trailer.commit_sha.in_(chunk))
        ):
            assert tr.commit_sha is not None
            meta = json.loads(tr.note or "{}")
            mv = meta.get("min_version")
            noms.setdefault(tr.commit_sha, []).append(
                Nomination(
                    note=tr.subject,
                    min_version=(mv[0], mv[1]) if mv else None,
                    prerequisite=_unique_sha(s, meta.get("prerequisite")),
                )
            )

    def rank(t: str) -> int:
        return topic_order.index(t) if t in topic_order else len(topic_order)

    return [
        Fix(
            commit=commit_info(c),
            topics=tuple(sorted(topics.get(c.sha, []), key=rank)),
            fixes=tuple(edges.get(c.sha, [])),
            nominations=tuple(noms.get(c.sha, [])),
        )
        for c in rows
    ]


def _unique_sha(s: Session, prefix: object) -> str | None:
    if not isinstance(prefix, str) or not prefix:
        return None
    hits = s.scalars(
        select(Commit.sha).where(Commit.sha >= prefix, Commit.sha < prefix + "g").limit(2)
    ).all()
    return hits[0] if len(hits) == 1 else None


def load_prerequisites(s: Session, branch: str) -> list[Prerequisite]:
    """Prerequisites the simulator verified for fixes on this branch."""
    rows = s.execute(
        select(BranchPrerequisite)
        .join(Branch, Branch.id == BranchPrerequisite.branch_id)
        .where(Branch.name == branch)
    ).scalars()
    return [Prerequisite(r.prerequisite_sha, r.fix_sha, r.evidence) for r in rows]


def load_world(
    s: Session, fixes: Iterable[Fix], branch: BranchView, extra: Iterable[str] = ()
) -> World:
    wanted: set[str] = set(extra)
    for f in fixes:
        wanted.add(f.commit.sha)
        wanted.update(r.dst for r in f.fixes if r.dst)
        wanted.update(n.prerequisite for n in f.nominations if n.prerequisite)
    wanted.update(c.upstream for c in branch.commits if c.upstream)
    commits: dict[str, CommitInfo] = {}
    for chunk in chunked(sorted(wanted)):
        for c in s.scalars(select(Commit).where(Commit.sha.in_(chunk))):
            commits[c.sha] = commit_info(c)
    reverts: dict[str, list[str]] = {}
    stable_home: dict[str, str] = {}
    for chunk in chunked(sorted(wanted)):
        for src, dst in s.execute(
            select(Edge.src, Edge.dst).where(Edge.kind == "reverts", Edge.dst.in_(chunk))
        ):
            if dst:
                reverts.setdefault(dst, []).append(src)
        for name, sha in s.execute(
            select(Branch.name, BranchCommit.sha)
            .join(Branch, Branch.id == BranchCommit.branch_id)
            .where(BranchCommit.sha.in_(chunk))
        ):
            stable_home.setdefault(sha, name)
    rev_shas = sorted({r for rs in reverts.values() for r in rs} - set(commits))
    for chunk in chunked(rev_shas):
        for c in s.scalars(select(Commit).where(Commit.sha.in_(chunk))):
            commits[c.sha] = commit_info(c)
    return World(
        commits=commits,
        mainline_reverts={k: tuple(v) for k, v in reverts.items()},
        stable_home=stable_home,
    )
