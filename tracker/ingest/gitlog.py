"""Incremental sync of mainline and stable branches from git into the store.

Each phase commits with its own cursor, so a run that dies half way leaves a consistent database
and the next run picks up where it stopped. Re-running with nothing new adds no rows: cursors
equal the heads, tags are unchanged, and every insert ignores keys it already has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tracker.config import BranchConfig, Config
from tracker.errors import ConfigError, GitError, RepositoryError, UnknownCommitError
from tracker.gcpause import collector_paused
from tracker.gitio import GitRepo
from tracker.graph import resolve_reference
from tracker.ingest.branchlogs import BranchLogs, log_exclude
from tracker.ingest.candidates import prefetch_prefixes, prefix_candidates, subject_candidates
from tracker.ingest.logrows import (
    COMMIT_COLUMNS,
    TOPIC_COLUMNS,
    TRAILER_COLUMNS,
    CommitRows,
    Row,
    RowRules,
    log_rows,
)
from tracker.ingest.releases import Tags, release_commits, release_tags
from tracker.ingest.stabletags import read_new_tags, store_new_tags
from tracker.pathkey import NO_PATHS, paths_key
from tracker.progress import Reporter
from tracker.store.bulkload import (
    defer_indexes,
    restore_indexes,
    restored_beside,
    unchecked_references,
)
from tracker.store.checkpoints import background_checkpoints
from tracker.store.db import Store
from tracker.store.models import (
    Branch,
    BranchCommit,
    Commit,
    CommitTopic,
    Edge,
    Message,
    QueuePatch,
    Source,
    SyncRun,
    Tag,
    Trailer,
)
from tracker.store.queries import (
    chunked,
    insert_ignore,
    insert_ignore_tuples,
    on_sqlite,
    sqlite_executemany,
)
from tracker.store.trailer_rows import with_repair
from tracker.topics import TopicClassifier

Progress = Callable[[str, int], None]
_BATCH = 20000
_EDGE_COLUMNS = ("kind", "src", "dst_raw", "dst", "rule", "evidence", "flagged")
_NO_RELEASE = (None, None)  # first_release, release_index of a commit not (yet) placed


@dataclass
class SyncStats:
    mainline_commits: int = 0
    branch_commits: dict[str, int] = field(default_factory=dict)
    tags: int = 0
    patch_ids: int = 0
    patch_id_links: int = 0
    edges: int = 0
    # Commits a phase had to skip (an object missing from the clone), "phase: sha: git's words".
    problems: list[str] = field(default_factory=list)

    def total(self) -> int:
        return (
            self.mainline_commits
            + sum(self.branch_commits.values())
            + self.tags
            + self.patch_id_links
            + self.edges
        )


def _now() -> datetime:
    return datetime.now(UTC)


class GitSync:
    def __init__(self, config: Config, store: Store, progress: Progress | None = None) -> None:
        self.config = config
        self.store = store
        self.progress = progress or (lambda _phase, _n: None)
        # Totals cost a rev-list walk each: only counted for a display that draws them.
        self.totals = progress if isinstance(progress, Reporter) else None
        self.classifier = TopicClassifier(config.topics)
        self._repos: dict[str, GitRepo] = {}
        # The release tags whose commits sync_mainline stored with their release.
        self._releases_assigned: Tags | None = None
        branch_rules = RowRules(config.upstream_patterns, config.stable_list, False)
        self._branch_logs = BranchLogs(store, branch_rules)
        self._next_branch: Sequence[BranchConfig] = ()
        self._bulk = False  # a first load (see _sync_commits)
        self.problems: list[str] = []

    def repo(self, name: str) -> GitRepo:
        if name not in self._repos:
            rc = self.config.repositories[name]
            if not rc.path.exists():
                raise RepositoryError(f"repository '{name}': path does not exist: {rc.path}")
            self._repos[name] = GitRepo(rc.path)
        return self._repos[name]

    def run(self, *, fetch: bool = False) -> SyncStats:
        stats = SyncStats()
        with self.store.session() as s:
            run = SyncRun(source="git", started_at=_now(), status="running", added=0)
            s.add(run)
        try:
            with background_checkpoints(self.store):
                self._sync_all(fetch, stats)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            with self.store.session() as s:
                r = s.get(SyncRun, run.id)
                if r:
                    r.status, r.error, r.finished_at = status, str(exc) or status, _now()
            raise
        stats.problems = list(self.problems)
        with self.store.session() as s:
            r = s.get(SyncRun, run.id)
            if r:
                r.status, r.added, r.finished_at = "ok", stats.total(), _now()
                if stats.problems:
                    r.error = f"{len(stats.problems)} skipped: " + "; ".join(stats.problems[:5])
        return stats

    def _sync_all(self, fetch: bool, stats: SyncStats) -> None:
        with _phase("fetch"):
            if fetch:
                for rc in self.config.repositories.values():
                    if rc.remote:
                        self.repo(rc.name).fetch(rc.remote)
        # Every pass builds rows, candidates and lookups by the thousand, none in a cycle: the
        # collector's sweeps of them were a fifth of the edges pass after a first load.
        with collector_paused():
            self._sync_commits(stats)
            with _phase("symbol topics"):
                self.sync_symbol_topics()
            with _phase("patch-ids"):
                self.sync_patch_ids(stats)
            with _phase("edges"):
                self.resolve_edges(stats)

    def _sync_commits(self, stats: SyncStats) -> None:
        """The phases that store commits; into an empty store they load with its secondary
        indexes dropped, rebuilt when they are done (or by the next run, after a kill)."""
        restore_indexes(self.store)
        deferred = defer_indexes(self.store)
        self._bulk = deferred
        try:
            with _phase("mainline"):
                self.sync_mainline(stats)
            with _phase("release tags"):
                self.sync_release_tags(stats)
            for i, b in enumerate(self.config.branches):
                with _phase(f"branch {b.name}"):
                    self._next_branch = self.config.branches[i + 1 : i + 2]
                    self.sync_branch(b, stats)
            with _phase("stable tags"):
                self.sync_stable_tags(stats, build_indexes=deferred)
        except Exception:
            if deferred:
                # The failure is what the caller must hear about; a rebuild that fails too is
                # retried by the next run (the dropped indexes stay recorded until then).
                with contextlib.suppress(Exception):
                    restore_indexes(self.store)
            raise
        finally:
            self._branch_logs.close()
        if deferred:
            restore_indexes(self.store)

    def _start_branch_logs(self, branches: Sequence[BranchConfig]) -> None:
        """Start the logs of these branches (one already started is left as it is)."""
        for b in branches:
            self._branch_logs.start(b, self.repo(b.repository))

    # -- cursors ---------------------------------------------------------------------------

    def _cursor(self, s: Session, name: str) -> Source:
        src = s.scalar(select(Source).where(Source.name == name))
        if src is None:
            src = Source(name=name, kind="git")
            s.add(src)
            s.flush()
        return src

    def _history_marker(self, s: Session) -> str:
        """A cheap fingerprint of what the derived passes read: row counts of commits, topics
        and branch memberships, and the newest trailer id (so a rewritten history of the same
        size still shows). Counting keeps a no-op sync from re-reading a million commits."""
        parts = (
            s.scalar(select(func.count()).select_from(Commit)),
            s.scalar(select(func.count()).select_from(CommitTopic)),
            s.scalar(select(func.count()).select_from(BranchCommit)),
            s.scalar(select(func.max(Trailer.id))),
        )
        return ":".join(str(p or 0) for p in parts)

    def _commits_changed(self, s: Session, name: str) -> bool:
        """Whether the history changed since this pass last ran (and remember it as seen).

        Callers commit the remembered marker with their own work, so a pass that dies half way
        runs again next time."""
        changed, marker = self._history_changed(s, name)
        self._cursor(s, name).cursor = marker
        return changed

    def _history_changed(self, s: Session, name: str) -> tuple[bool, str]:
        """Whether the history differs from what pass ``name`` last recorded, and the marker
        to record once the pass's work is committed."""
        marker = self._history_marker(s)
        return self._cursor(s, name).cursor != marker, marker

    # -- mainline --------------------------------------------------------------------------

    def sync_mainline(self, stats: SyncStats) -> None:
        ml = self.config.mainline
        repo = self.repo(ml.repository)
        try:
            head = repo.resolve(ml.ref)
        except UnknownCommitError:
            raise RepositoryError(
                f"mainline ref '{ml.ref}' not found in repository '{ml.repository}'"
            ) from None
        cursor_name = f"git:{ml.repository}:{ml.ref}"
        with self.store.session() as s:
            old = self._cursor(s, cursor_name).cursor
            next_order = (s.scalar(select(func.max(Commit.mainline_order))) or 0) + 1
            first = s.scalar(select(Commit.sha).limit(1)) is None
        if old == head:
            return
        exclude: list[str] = []
        if old and repo.try_resolve(old):
            if repo.is_ancestor(old, head):
                exclude = [old]
            else:
                # A rebuilt ref: commits only the old head had are no longer mainline.
                self._drop_mainline(repo.rev_list(old, [head]))
                exclude = [old]
        if self.totals is not None:
            self.totals.expect("mainline", repo.count(head, exclude))
        rules = RowRules(
            self.config.upstream_patterns, self.config.stable_list, True, self.classifier
        )
        releases: dict[str, tuple[str, int]] | None = None if first else {}
        ended = False
        with contextlib.closing(log_rows(repo, head, exclude, rules)) as rows:
            while not ended:
                # Each chunk is inserted as it arrives, so storing keeps pace with git and the
                # parsing instead of starting once a whole batch is parsed (it then ran on,
                # alone, long after git had finished); a transaction still spans _BATCH
                # commits, because each commit of a large one is a WAL checkpoint.
                with self.store.session() as s:
                    if self._bulk:
                        unchecked_references(s)  # trailers and topics follow their commit
                    stored, last = 0, head
                    for chunk in rows:
                        releases = self._first_releases() if releases is None else releases
                        next_order = self._insert_mainline(
                            s, chunk, next_order, stats, releases, first
                        )
                        self.progress("mainline", len(chunk))
                        stored, last = stored + len(chunk), chunk[-1][0]
                        if stored >= _BATCH:
                            break
                    else:
                        ended = True
                        # The branches' git and parsing run while the last rows are committed
                        # and the release tags stored.
                        self._start_branch_logs(self.config.branches)
                    self._cursor(s, cursor_name).cursor = head if ended else last

    def _first_releases(self) -> dict[str, tuple[str, int]]:
        """For a first sync, each commit's first release, stored with the commit: setting it
        afterwards rewrote every row of the history. Read while the log worker parses; the
        release tags phase then only records the tags (see sync_release_tags)."""
        ml = self.config.mainline
        repo = self.repo(ml.repository)
        tags = release_tags(repo, ml.release_tag_pattern)
        found: dict[str, tuple[str, int]] = {}
        for i, name, _, shas in release_commits(repo, tags):
            found.update(dict.fromkeys(shas, (name, i)))
        self._releases_assigned = tags
        return found

    def _drop_mainline(self, shas: Sequence[str]) -> None:
        with self.store.session() as s:
            for chunk in chunked(shas):
                s.execute(
                    update(Commit)
                    .where(Commit.sha.in_(chunk))
                    .values(
                        mainline=False, mainline_order=None, first_release=None, release_index=None
                    )
                )

    def _insert_mainline(
        self,
        s: Session,
        chunk: Sequence[CommitRows],
        order: int,
        stats: SyncStats,
        releases: dict[str, tuple[str, int]],
        first: bool,
    ) -> int:
        """Insert one chunk of mainline rows in ``s``; the mainline order after it."""
        commits: list[Row] = []
        trailers: list[Row] = []
        topics: list[Row] = []
        for sha, row, commit_trailers, commit_topics in chunk:
            commits.append((*row, order, *releases.get(sha, _NO_RELEASE)))
            order += 1
            trailers += commit_trailers
            topics += commit_topics
        # Into an empty store the log's commits are all new (the log lists each once).
        existing = set() if first else self._existing(s, [sha for sha, _, _, _ in chunk])
        fresh = [c for c in commits if c[0] not in existing] if existing else commits
        insert_ignore_tuples(s, Commit, COMMIT_COLUMNS, fresh)
        if existing:
            # Commits seen before as stable-only (or dropped by a rewrite) become mainline.
            for part in chunked(list(existing)):
                s.execute(
                    update(Commit)
                    .where(Commit.sha.in_(part), Commit.mainline.is_(False))
                    .values(mainline=True)
                )
            trailers = [t for t in trailers if t[0] not in existing]
        insert_ignore_tuples(s, Trailer, TRAILER_COLUMNS, trailers)
        insert_ignore_tuples(s, CommitTopic, TOPIC_COLUMNS, topics)
        stats.mainline_commits += len(fresh)
        return order

    def _existing(self, s: Session, shas: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunked(shas):
            if on_sqlite(s):
                # As SQL text: SQLAlchemy's expanding IN costs more than the lookup itself.
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT sha FROM commits WHERE sha IN ({marks})"
                found.update(r[0] for r in s.connection().exec_driver_sql(sql, tuple(chunk)))
            else:
                found.update(s.scalars(select(Commit.sha).where(Commit.sha.in_(chunk))))
        return found

    # -- release tags ----------------------------------------------------------------------

    def sync_release_tags(self, stats: SyncStats) -> None:
        ml = self.config.mainline
        repo = self.repo(ml.repository)
        wanted = release_tags(repo, ml.release_tag_pattern)
        with self.store.session() as s:
            known = [
                (t.name, t.sha)
                for t in s.scalars(select(Tag).where(Tag.kind == "mainline").order_by(Tag.ordinal))
            ]
        # A first sync stored its commits with their releases (see sync_mainline).
        assigned = not known and wanted == self._releases_assigned
        start = len(known) if wanted[: len(known)] == known else 0
        if start != len(known):
            # The recorded tags are not where they were: every release is found anew.
            with self.store.session() as s:
                s.execute(delete(Tag).where(Tag.kind == "mainline"))
                s.execute(update(Commit).values(first_release=None, release_index=None))
        elif start < len(wanted) and not assigned:
            # So are releases from here on: a run that died after storing commits with their
            # releases (see sync_mainline) may have seen other tags.
            with self.store.session() as s:
                s.execute(
                    update(Commit)
                    .where(Commit.release_index >= start)
                    .values(first_release=None, release_index=None)
                )
        if self.totals is not None and start < len(wanted):
            self.totals.expect("release tags", len(wanted) - start)
        if assigned:
            # Only the tags are left to record: one transaction, not one per tag.
            with self.store.session() as s:
                for i, (name, sha) in enumerate(wanted):
                    s.add(Tag(name=name, sha=sha, kind="mainline", branch=None, ordinal=i))
            stats.tags += len(wanted)
            self.progress("release tags", len(wanted))
            return
        for i, name, sha, shas in release_commits(repo, wanted, start):
            with self.store.session() as s:
                if on_sqlite(s):
                    sqlite_executemany(
                        s,
                        "UPDATE commits SET first_release = ?, release_index = ? "
                        "WHERE sha = ? AND release_index IS NULL",
                        [(name, i, c) for c in shas],
                    )
                else:
                    for chunk in chunked(shas):
                        s.execute(
                            update(Commit)
                            .where(Commit.sha.in_(chunk), Commit.release_index.is_(None))
                            .values(first_release=name, release_index=i)
                        )
                s.add(Tag(name=name, sha=sha, kind="mainline", branch=None, ordinal=i))
                stats.tags += 1
            self.progress("release tags", 1)

    # -- stable branches -------------------------------------------------------------------

    def _branch_row(self, s: Session, b: BranchConfig, base_sha: str) -> Branch:
        row = s.scalar(select(Branch).where(Branch.name == b.name))
        base_tag = s.scalar(select(Tag).where(Tag.kind == "mainline", Tag.name == b.base))
        if base_tag is None:
            raise ConfigError(
                f"branch '{b.name}': base '{b.base}' is not a mainline release tag matching "
                f"{self.config.mainline.release_tag_pattern!r}",
                path=str(self.config.path) if self.config.path else None,
                key="branches.base",
            )
        if row is None:
            row = Branch(name=b.name, base_tag=b.base)
            s.add(row)
        if row.base_sha != base_sha or row.base_tag != b.base:
            row.base_tag, row.base_sha = b.base, base_sha
            if row.id is not None:
                # A new base means a different set of commits "after the base": start over.
                s.execute(delete(BranchCommit).where(BranchCommit.branch_id == row.id))
            row.head_sha = None
        row.base_release_index = base_tag.ordinal
        s.flush()
        return row

    def sync_branch(self, b: BranchConfig, stats: SyncStats) -> None:
        repo = self.repo(b.repository)
        try:
            base_sha = repo.resolve(b.base)
        except UnknownCommitError:
            raise RepositoryError(
                f"branch '{b.name}': base tag '{b.base}' not found in repository '{b.repository}'"
            ) from None
        try:
            head = repo.resolve(b.ref)
        except UnknownCommitError:
            raise RepositoryError(
                f"branch '{b.name}': ref '{b.ref}' not found in repository '{b.repository}'"
            ) from None
        with self.store.session() as s:
            row = self._branch_row(s, b, base_sha)
            branch_id, old = row.id, row.head_sha
            position = (
                s.scalar(
                    select(func.max(BranchCommit.position)).where(
                        BranchCommit.branch_id == branch_id
                    )
                )
                or 0
            )
        stats.branch_commits.setdefault(b.name, 0)
        if old == head:
            return
        exclude = log_exclude(repo, base_sha, old)
        if old is not None and old in exclude and not repo.is_ancestor(old, head):
            # history rewritten: what the old head had and the new one lacks leaves the branch
            dropped = repo.rev_list(old, [head, base_sha])
            with self.store.session() as s:
                for chunk in chunked(dropped):
                    s.execute(
                        delete(BranchCommit).where(
                            BranchCommit.branch_id == branch_id, BranchCommit.sha.in_(chunk)
                        )
                    )
        if self.totals is not None:
            self.totals.expect(b.name, repo.count(head, exclude))
        rules = self._branch_logs.rules
        started = self._branch_logs.take(b.name, repo, head, exclude)
        commits: list[Row] = []
        members: list[dict[str, Any]] = []
        trailers: list[Row] = []
        for parsed in started or log_rows(repo, head, exclude, rules):
            for sha, commit, commit_trailers, _ in parsed:
                commits.append((*commit, None, *_NO_RELEASE))
                position += 1
                members.append(
                    {"branch_id": branch_id, "sha": sha, "position": position, "release": None}
                )
                trailers += commit_trailers
            self.progress(b.name, len(parsed))
        # The next branch's git and parsing run while these rows are stored.
        self._start_branch_logs(self._next_branch)
        with self.store.session() as s:
            if self._bulk:
                unchecked_references(s)  # trailers and members follow the commits they name
            existing = self._existing(s, [c[0] for c in commits])
            insert_ignore_tuples(
                s, Commit, COMMIT_COLUMNS, [c for c in commits if c[0] not in existing]
            )
            insert_ignore_tuples(
                s, Trailer, TRAILER_COLUMNS, [t for t in trailers if t[0] not in existing]
            )
            before = (
                s.scalar(
                    select(func.count())
                    .select_from(BranchCommit)
                    .where(BranchCommit.branch_id == branch_id)
                )
                or 0
            )
            insert_ignore(s, BranchCommit, members)
            after = (
                s.scalar(
                    select(func.count())
                    .select_from(BranchCommit)
                    .where(BranchCommit.branch_id == branch_id)
                )
                or 0
            )
            row2 = s.get(Branch, branch_id)
            assert row2 is not None
            row2.head_sha, row2.synced_at = head, _now()
            stats.branch_commits[b.name] += after - before

    def sync_stable_tags(self, stats: SyncStats, build_indexes: bool = False) -> None:
        """Every branch's new stable tags. Reading them (a git process per tag) writes nothing,
        so the indexes a first load deferred are built meanwhile, by a thread of their own:
        SQLite builds them with the GIL released, on the core git leaves idle."""
        with restored_beside(self.store) if build_indexes else contextlib.nullcontext():
            found = [
                read_new_tags(self.store, self.repo(b.repository), b) for b in self.config.branches
            ]
        for b, new in zip(self.config.branches, found, strict=True):
            stats.tags += store_new_tags(self.store, b, new)

    # -- topics by symbol ------------------------------------------------------------------

    def sync_symbol_topics(self) -> None:
        """Fix candidates whose diff touches a topic symbol join that topic.

        Only commits carrying Fixes:/Cc: stable are checked: pickaxe over every commit of a
        kernel history would take far longer than the rest of the sync together.
        """
        ml_repo = self.repo(self.config.mainline.repository)
        cursor_name = "topics:symbols"
        regexes = {
            t.name: rx
            for t in self.classifier.topics
            if (rx := self.classifier.symbol_regex(t.name)) is not None
        }
        with self.store.session() as s:
            cur = self._cursor(s, cursor_name)
            if not regexes:
                # Nothing to look for: the candidates are passed over, as checked for nothing
                # (reading them cost a scan of the history's trailers).
                top = s.scalar(select(func.max(Commit.mainline_order)))
                cur.cursor = str(max(top or 0, int(cur.cursor or 0)))
                return
            done_upto = int(cur.cursor or 0)
            tagged = (
                select(Trailer.id)
                .where(Trailer.commit_sha == Commit.sha, Trailer.kind.in_(("fixes", "cc-stable")))
                .exists()
            )
            rows = s.execute(
                select(Commit.sha, Commit.mainline_order)
                .where(Commit.mainline_order > done_upto, Commit.mainline.is_(True), tagged)
                .order_by(Commit.mainline_order)
            ).all()
        if not rows:
            return
        found: list[dict[str, Any]] = []
        # One pickaxe pass over all symbols, then per topic only over the few hits.
        combined = "|".join(regexes.values())
        hits: set[str] = set()
        for chunk in chunked([r[0] for r in rows], 2000):
            hits |= self._skipping_unreadable(
                "symbol topics", chunk, partial(_grep, ml_repo, combined), set(), set.union
            )
        for name, rx in regexes.items():
            grep = partial(_grep, ml_repo, rx)
            for chunk in chunked(sorted(hits), 2000):
                for sha in self._skipping_unreadable(
                    "symbol topics", chunk, grep, set(), set.union
                ):
                    found.append({"sha": sha, "topic": name, "rule": "diff touches a symbol"})
        with self.store.session() as s:
            insert_ignore(s, CommitTopic, found)
            self._cursor(s, cursor_name).cursor = str(max(r[1] or 0 for r in rows))

    # -- patch-ids -------------------------------------------------------------------------

    def sync_patch_ids(self, stats: SyncStats) -> None:
        """Patch-ids only where one can decide something.

        Two kinds of rows look for a commit by patch-id: stable commits that carry no upstream
        reference (their patch-id is the only way to find what they backport) and mails not yet
        linked to the commit they became. git's patch-id hashes each file's ``diff --git`` line,
        so a mainline commit can share a seeker's patch-id only if its diff touches the same
        paths: only those commits, found by their path key (cheap, from ``git log
        --name-only``), pay for a diff. With an all-paths topic that is a few thousand commits
        of a history, not all of it.
        """
        with self.store.session() as s:
            marker = f"{self._history_marker(s)}:{_seekers_marker(s)}"
            if self._cursor(s, "patch-ids:history").cursor == marker:
                todo: list[str] = []
            else:
                todo = self._patch_id_todo(s)
        repo = self.repo(self.config.mainline.repository)
        if self.totals is not None and todo:
            self.totals.expect("patch-ids", len(todo))
        for chunk in chunked(todo, 1000):
            ids = self._skipping_unreadable(
                "patch-ids", chunk, partial(self._patch_ids_any_repo, repo), {}, _merged
            )
            with self.store.session() as s:
                s.execute(
                    update(Commit),
                    [{"sha": sha, "patch_id": ids.get(sha, "")} for sha in chunk],
                )
            stats.patch_ids += len(chunk)
            self.progress("patch-ids", len(chunk))
        with self.store.session() as s:
            self._cursor(s, "patch-ids:history").cursor = marker
        self._link_by_patch_id(stats)

    def _patch_id_todo(self, s: Session) -> list[str]:
        """Commits still without a patch-id that a seeker could match, and the seekers."""
        self._fill_commit_keys(s)
        # From branch_commits, filtered here: "upstream_sha IS NULL" matches most commits.
        orphans = [
            (sha, pid, key)
            for sha, pid, up, key in s.execute(
                select(Commit.sha, Commit.patch_id, Commit.upstream_sha, Commit.paths_key).where(
                    Commit.sha.in_(select(BranchCommit.sha))
                )
            )
            if up is None
        ]
        wanted = {key for _, _, key in orphans} | self._mail_keys(s) | _queue_keys(s)
        wanted -= {None, NO_PATHS}
        todo = {sha for sha, pid, _ in orphans if pid is None}
        for chunk in chunked(sorted(k for k in wanted if k is not None), 500):
            # patch_id is tested here: in SQL, SQLite would walk that index (most commits).
            todo.update(
                sha
                for sha, pid in s.execute(
                    select(Commit.sha, Commit.patch_id).where(
                        Commit.paths_key.in_(chunk),
                        Commit.mainline.is_(True),
                        # Topic commits, as before path keys: what links stays what it was.
                        Commit.sha.in_(select(CommitTopic.sha)),
                    )
                )
                if pid is None
            )
        return sorted(todo)

    def _mail_keys(self, s: Session) -> set[str | None]:
        """Path keys of the mails waiting for a commit with their patch-id."""
        from tracker.ingest.identity import LINKABLE

        waiting = s.execute(
            select(Message.message_id, Message.paths_key).where(
                Message.change_id.is_(None),
                Message.kind.in_(LINKABLE),
                Message.patch_id.is_not(None),
                Message.patch_id != "",
            )
        ).all()
        keys: set[str | None] = {key for _, key in waiting}
        unknown = [msgid for msgid, key in waiting if key is None]
        if unknown:
            from tracker.ingest.mailkeys import fill_message_keys

            keys |= set(fill_message_keys(s, unknown).values())
        return keys

    def _fill_commit_keys(self, s: Session) -> None:
        """Path keys for commits stored before commits carried one (read once from git)."""
        shas = list(s.scalars(select(Commit.sha).where(Commit.paths_key.is_(None))))
        repo = self.repo(self.config.mainline.repository)
        for chunk in chunked(shas, 5000):
            found = self._skipping_unreadable(
                "patch-ids", chunk, partial(self._keys_any_repo, repo), {}, _merged
            )
            # An unreadable commit gets the empty key: it has no patch-id to share either.
            s.execute(
                update(Commit),
                [{"sha": sha, "paths_key": found.get(sha, NO_PATHS)} for sha in chunk],
            )

    def _keys_any_repo(self, repo: GitRepo, shas: list[str]) -> dict[str, str]:
        try:
            found = repo.paths(shas)
        except GitError:
            # Some live in a branch's own clone (or are damaged): sort them out one by one.
            found = repo.paths([sha for sha in shas if repo.try_resolve(sha)])
            for b in self.config.branches:
                missing = [sha for sha in shas if sha not in found]
                if not missing or b.repository == self.config.mainline.repository:
                    continue
                other = self.repo(b.repository)
                found.update(other.paths([sha for sha in missing if other.try_resolve(sha)]))
        return {sha: paths_key(paths) for sha, paths in found.items()}

    def _skipping_unreadable(
        self,
        phase: str,
        shas: list[str],
        read: Callable[[list[str]], _R],
        empty: _R,
        merge: Callable[[_R, _R], _R],
    ) -> _R:
        """``read(shas)``; when git cannot read an object some of them need, halve the batch
        until the commits that need it are found, record each, and read the rest.

        A clone with a missing or corrupt object then syncs everything else, and the run log
        names the phase and the commit instead of failing the whole sync."""
        try:
            return read(shas)
        except GitError as exc:
            if not _unreadable(str(exc)):
                raise
            if len(shas) == 1:
                words = " ".join(str(exc).split())
                self.problems.append(f"{phase}: {shas[0]}: {words}")
                return empty
        half = len(shas) // 2
        left = self._skipping_unreadable(phase, shas[:half], read, empty, merge)
        return merge(left, self._skipping_unreadable(phase, shas[half:], read, empty, merge))

    def _patch_ids_any_repo(self, repo: GitRepo, shas: list[str]) -> dict[str, str]:
        ids = repo.patch_ids(shas)
        missing = [s for s in shas if s not in ids]
        # Stable commits may live in another clone than mainline.
        for b in self.config.branches:
            if not missing or b.repository == self.config.mainline.repository:
                continue
            other = self.repo(b.repository)
            present = [s for s in missing if other.try_resolve(s)]
            ids.update(other.patch_ids(present))
            missing = [s for s in missing if s not in ids]
        return ids

    def _link_by_patch_id(self, stats: SyncStats) -> None:
        with self.store.session() as s:
            if not self._commits_changed(s, "patch-id-links:commits"):
                return
            # From branch_commits, filtered here: "upstream_sha IS NULL" matches most commits.
            rows = s.execute(
                select(Commit.sha, Commit.patch_id, Commit.upstream_sha, Commit.mainline).where(
                    Commit.sha.in_(select(BranchCommit.sha))
                )
            )
            orphans = [(sha, pid) for sha, pid, up, ml in rows if pid and up is None and not ml]
            # The earliest mainline commit with each patch-id, a query per few hundred orphans
            # (one per orphan was a tenth of a first sync's patch-id pass).
            earliest: dict[str, tuple[int, str]] = {}
            for chunk in chunked(sorted({pid for _, pid in orphans})):
                for sha, pid, order in s.execute(
                    select(Commit.sha, Commit.patch_id, Commit.mainline_order).where(
                        Commit.patch_id.in_(chunk), Commit.mainline.is_(True)
                    )
                ):
                    key = (-1 if order is None else order, sha)
                    if pid is not None and (pid not in earliest or key < earliest[pid]):
                        earliest[pid] = key
            links = [
                {"sha": sha, "upstream_sha": earliest[pid][1], "upstream_rule": "patch-id"}
                for sha, pid in orphans
                if pid in earliest
            ]
            if links:
                s.execute(update(Commit), links)
            stats.patch_id_links += len(links)

    # -- edges -----------------------------------------------------------------------------

    def resolve_edges(self, stats: SyncStats) -> None:
        """Resolve every reference that has no resolved edge yet, and record backports.

        Lookups read plain columns and the new edges are written in one batch: one ORM object
        and one autoflush per Fixes: cost ~1 ms each, minutes over a kernel history.
        """
        kinds = ("fixes", "stable-dep-of", "reverts")
        with self.store.session() as s, s.no_autoflush:
            # Only trailers added since the last run, plus references still unresolved (the
            # commit they name may have arrived since): a no-op sync stays a no-op at 1M commits.
            cursor = self._cursor(s, "edges:trailers")
            last = int(cursor.cursor or 0)
            top = s.scalar(select(func.max(Trailer.id))) or 0
            cols = (Trailer.commit_sha, Trailer.kind, Trailer.value, Trailer.subject, Trailer.note)
            fresh = s.execute(
                select(*cols).where(
                    Trailer.id > last, Trailer.kind.in_(kinds), Trailer.commit_sha.is_not(None)
                )
            ).all()
            # Unresolved references can only resolve, and backports only appear, once the
            # history has changed.
            changed = self._commits_changed(s, "edges:history")
            retry = (
                []
                if not changed
                else s.execute(
                    select(*cols)
                    .select_from(Edge)
                    .join(
                        Trailer,
                        (Edge.src == Trailer.commit_sha)
                        & (Edge.kind == Trailer.kind)
                        & (Edge.dst_raw == Trailer.value),
                    )
                    .where(Edge.dst.is_(None))
                ).all()
            )
            pending: list[tuple[str | None, str, str, str | None, str | None]] = list(
                dict.fromkeys((r[0], r[1], r[2], r[3], r[4]) for r in (*fresh, *retry))
            )
            unresolved = (
                {
                    (e.kind, e.src, e.dst_raw): e
                    for e in s.scalars(select(Edge).where(Edge.dst.is_(None)))
                }
                if pending
                else {}
            )
            new_rows: list[Row] = []
            known = prefetch_prefixes(s, {raw.strip().lower() for _, _, raw, _, _ in pending})
            for src, kind, raw, subject, note in pending:
                assert src is not None
                res = resolve_reference(
                    raw,
                    subject,
                    lambda p: known[p] if p in known else prefix_candidates(s, p),
                    lambda subj: subject_candidates(s, subj),
                )
                evidence, flagged = with_repair(res.evidence, res.flagged, note)
                res = replace(res, evidence=evidence, flagged=flagged)
                edge = unresolved.get((kind, src, raw))
                if edge is None:
                    new_rows.append((kind, src, raw, res.dst, res.rule, res.evidence, res.flagged))
                elif res.dst is not None:
                    edge.dst, edge.rule, edge.evidence, edge.flagged = (
                        res.dst,
                        res.rule,
                        res.evidence,
                        res.flagged,
                    )
            # Stable commits only: "IN (branch_commits)" makes SQLite start from that table; a
            # join with DISTINCT walked all commits (3 s at 1M).
            backports = (
                s.execute(
                    select(Commit.sha, Commit.upstream_sha, Commit.upstream_rule).where(
                        Commit.sha.in_(select(BranchCommit.sha)),
                        Commit.upstream_sha.is_not(None),
                        ~select(Edge.id)
                        .where(Edge.src == Commit.sha, Edge.kind == "backport-of")
                        .exists(),
                    )
                ).all()
                if changed
                else []
            )
            for sha, upstream, rule in backports:
                assert upstream is not None
                evidence = (
                    f"{sha[:12]} has the same patch-id as {upstream[:12]}"
                    if rule == "patch-id"
                    else f"{sha[:12]} says it is upstream commit {upstream[:12]}"
                )
                new_rows.append(
                    (
                        "backport-of",
                        sha,
                        upstream,
                        upstream,
                        rule or "upstream-reference",
                        evidence,
                        False,
                    )
                )
            s.flush()
            insert_ignore_tuples(s, Edge, _EDGE_COLUMNS, new_rows)
            cursor.cursor = str(top)
            stats.edges += len(new_rows)


def _merged(a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    return {**a, **b}


def _seekers_marker(s: Session) -> str:
    """Mails and queued patches with a patch-id: a new one may be waiting for a commit's."""
    mails = s.scalar(select(func.count()).select_from(Message).where(Message.patch_id.is_not(None)))
    queued = s.scalar(
        select(func.count()).select_from(QueuePatch).where(QueuePatch.patch_id.is_not(None))
    )
    return f"{mails or 0}:{queued or 0}"


def _queue_keys(s: Session) -> set[str | None]:
    """Path keys of the stable-queue patches that carry no upstream line (linked by patch-id)."""
    return set(
        s.scalars(
            select(QueuePatch.paths_key).where(
                QueuePatch.upstream_sha.is_(None), QueuePatch.patch_id.is_not(None)
            )
        )
    )


def _grep(repo: GitRepo, regex: str, shas: list[str]) -> set[str]:
    return repo.grep_diffs(shas, regex)


@contextlib.contextmanager
def _phase(name: str) -> Iterator[None]:
    """A git failure says which phase of the sync met it."""
    try:
        yield
    except GitError as exc:
        raise GitError(f"git sync, phase '{name}': {exc}") from None


_R = TypeVar("_R", dict[str, str], set[str])

_UNREADABLE = ("unable to read", "bad object", "missing blob", "missing tree", "corrupt")


def _unreadable(message: str) -> bool:
    return any(w in message for w in _UNREADABLE)
