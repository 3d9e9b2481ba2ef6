"""The ``stable-queue`` source: what a local stable-queue clone says is queued, dropped, released.

Incremental by the clone's head: the cursor holds the last head read and the tree id of each
directory read at it, so a new head re-reads only the ``queue-X.Y`` and ``releases/X.Y.Z``
directories whose tree changed, and within them only the files whose blob changed. The new
``series`` is compared with the rows the store holds: a patch that left it is *released* when a
``releases/X.Y.Z/`` of its series has it (same file name or same upstream commit), else
*dropped*, with the head that dropped it.

Every git call names objects by their ids only (heads, trees, blobs): file and directory names
read from the clone never reach a command line. Rows and cursor are written in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.config import Config, SourceConfig
from tracker.errors import GitError, RepositoryError, SourceError, TrackerError
from tracker.gitio import GitRepo, TreeEntry
from tracker.ingest.mailstore import diff_paths_key
from tracker.ingest.stablequeue import QueueFile, git_form, parse_queue_file, parse_series
from tracker.ingest.stablequeue import release_of as _release_of
from tracker.store.models import Commit, QueuePatch, Source

QUEUED = "queued"
DROPPED = "dropped"
RELEASED = "released"
UPSTREAM_LINE = "upstream-line"
PATCH_ID = "patch-id"


@dataclass
class _Pending:
    """Files read at this head whose patch-id is still to be asked of git."""

    rows: list[QueuePatch] = field(default_factory=list)
    diffs: list[bytes] = field(default_factory=list)


def queue_dirs(config: Config, src: SourceConfig) -> list[tuple[str, str]]:
    """(series, queue directory) for every branch the source maps, each series once."""
    versions = {b.name: b.version for b in config.branches}
    out: dict[str, str] = {}
    for branch, directory in src.queues:
        out.setdefault(versions[branch], directory)
    return list(out.items())


def sync_queue(config: Config, s: Session, source: Source, src: SourceConfig) -> QueueReport:
    """Bring ``source``'s rows up to the clone's head, in the caller's transaction."""
    if src.path is None:
        raise SourceError(f"source '{src.name}': kind stable-queue needs 'path'")
    try:
        repo = GitRepo(src.path)
        head = repo.resolve("HEAD")
    except (RepositoryError, GitError) as exc:
        raise SourceError(f"source '{src.name}': {exc}") from None
    except TrackerError as exc:  # an unborn HEAD (an empty clone)
        raise SourceError(f"source '{src.name}': cannot read HEAD of {src.path}: {exc}") from None
    cursor = _cursor(source.cursor)
    dirs = queue_dirs(config, src)
    report = QueueReport(head=head)
    read = cursor.get("read")
    if cursor.get("head") == head and isinstance(read, list) and {d for _, d in dirs} <= set(read):
        report.linked = link_queue(s)
        return report
    try:
        reader = _Reader(repo, s, source, head, cursor, report)
        reader.run(dirs)
    except GitError as exc:
        raise SourceError(f"source '{src.name}': {exc}") from None
    report.linked = link_queue(s)
    report.errors += [r.error for r in reader.pending.rows if r.upstream_sha is None and r.error]
    source.cursor = json.dumps(cursor, sort_keys=True)
    source.last_success = datetime.now(UTC)
    return report


@dataclass
class QueueReport:
    head: str
    read: int = 0
    changed: int = 0
    linked: int = 0
    errors: list[str] = field(default_factory=list)


def _cursor(raw: str | None) -> dict[str, object]:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


class _Reader:
    def __init__(
        self,
        repo: GitRepo,
        s: Session,
        source: Source,
        head: str,
        cursor: dict[str, object],
        report: QueueReport,
    ) -> None:
        self.repo = repo
        self.s = s
        self.source = source
        self.head = head
        self.cursor = cursor
        trees = cursor.get("trees")
        self.trees: dict[str, str] = dict(trees) if isinstance(trees, dict) else {}
        self.report = report
        # tracker reparse: every file is parsed again, whatever its blob.
        self.force = bool(cursor.pop("force", False))
        self.at = datetime.fromtimestamp(repo.commit_time(head), UTC)
        self.pending = _Pending()
        # Rows of the directories read at this head, loaded as each is reached: the releases of
        # a long series hold tens of thousands of rows that a new head rarely touches.
        self.rows: dict[tuple[str, str], QueuePatch] = {}
        self._loaded: set[str] = set()

    def _load(self, directory: str) -> None:
        if directory in self._loaded:
            return
        self._loaded.add(directory)
        for r in self.s.scalars(
            select(QueuePatch).where(
                QueuePatch.source_id == self.source.id, QueuePatch.directory == directory
            )
        ):
            self.rows[(r.directory, r.filename)] = r

    def run(self, dirs: Sequence[tuple[str, str]]) -> None:
        top = {e.name: e for e in self.repo.tree_entries(self.head)}
        rel = top.get("releases")
        releases = self.repo.tree_entries(rel.oid) if rel and rel.kind == "tree" else []
        for series, directory in dirs:
            for entry in releases:
                release = _release_of(entry.name, series)
                if release and entry.kind == "tree":
                    self._release(series, release, entry)
            q = top.get(directory)
            self._queue(series, directory, q if q is not None and q.kind == "tree" else None)
        self._patch_ids()
        self.cursor.update(head=self.head, trees=self.trees, read=sorted(d for _, d in dirs))

    # -- directories -------------------------------------------------------------------------

    def _release(self, series: str, release: str, entry: TreeEntry) -> None:
        directory = f"releases/{release}"
        if self.trees.get(directory) == entry.oid:
            return
        self._load(directory)
        files = [e for e in self.repo.tree_entries(entry.oid) if _is_patch(e)]
        self._read_files(series, directory, files, state=RELEASED, release=release)
        names = {e.name for e in files}
        for (d, name), row in list(self.rows.items()):
            if d == directory and name not in names:
                self.s.delete(row)  # a release directory rewritten: its files are what it holds
                del self.rows[(d, name)]
        self.trees[directory] = entry.oid

    def _queue(self, series: str, directory: str, tree: TreeEntry | None) -> None:
        if tree is not None and self.trees.get(directory) == tree.oid:
            return
        self._load(directory)
        entries = self.repo.tree_entries(tree.oid) if tree else []
        files = {e.name: e for e in entries if e.kind == "blob"}
        names: list[str] = []
        if "series" in files:
            names = parse_series(self.repo.blobs([files["series"].oid])[files["series"].oid])
        elif tree is not None:
            self._error(f"{directory} has no series file at {self.head[:12]}: nothing is queued")
        order = list(dict.fromkeys(names))
        present = [files[n] for n in order if n in files and _is_patch(files[n])]
        self._read_files(series, directory, present, state=QUEUED, release=None)
        total = len(order)
        for pos, name in enumerate(order, start=1):
            row = self.rows.get((directory, name))
            if name not in files:
                row = self._row(series, directory, name, row)
                row.blob = None
                row.error = (
                    f"{directory}/series names {name}, which is not in the clone at "
                    f"{self.head[:12]}"
                )
                self._error(row.error)
            assert row is not None
            self._enter(row, QUEUED)
            row.position, row.total = pos, total
        left = [
            r
            for (d, name), r in self.rows.items()
            if d == directory and r.state == QUEUED and name not in set(order)
        ]
        released = self._released(series) if left else {}
        for row in left:
            release = released.get(row.filename) or released.get(row.upstream_sha or "")
            if release:
                self._enter(row, RELEASED)
                row.release = release
            else:
                self._enter(row, DROPPED)
                row.dropped_head = self.head
        if tree is None:
            self.trees.pop(directory, None)
        else:
            self.trees[directory] = tree.oid

    def _released(self, series: str) -> dict[str, str]:
        """File name and upstream sha -> the release of ``series`` that carries it."""
        self.s.flush()
        out: dict[str, str] = {}
        for name, up, release in self.s.execute(
            select(QueuePatch.filename, QueuePatch.upstream_sha, QueuePatch.release).where(
                QueuePatch.source_id == self.source.id,
                QueuePatch.series == series,
                QueuePatch.directory.startswith("releases/"),
            )
        ):
            if release:
                out.setdefault(name, release)
                if up:
                    out.setdefault(up, release)
        return out

    # -- files -------------------------------------------------------------------------------

    def _read_files(
        self,
        series: str,
        directory: str,
        files: Sequence[TreeEntry],
        *,
        state: str,
        release: str | None,
    ) -> None:
        todo = [
            e
            for e in files
            if self.force or (r := self.rows.get((directory, e.name))) is None or r.blob != e.oid
        ]
        blobs = self.repo.blobs([e.oid for e in todo])
        for e in todo:
            row = self._row(series, directory, e.name, self.rows.get((directory, e.name)))
            row.blob = e.oid
            self.report.read += 1
            try:
                parsed = parse_queue_file(blobs[e.oid])
            except SourceError as exc:
                row.error = f"{directory}/{e.name}: {exc}"
                self._error(row.error)
                continue
            self._fill(row, parsed)
        for e in files:
            row = self.rows[(directory, e.name)]
            if state == RELEASED:
                self._enter(row, RELEASED)
                row.release = release

    def _fill(self, row: QueuePatch, f: QueueFile) -> None:
        row.subject = f.subject or row.filename
        row.author = f.author
        row.stable_dep_of = json.dumps([[r.sha, r.subject or ""] for r in f.stable_dep_of])
        row.patch_id = None
        row.paths_key = None
        row.error = None
        if f.upstream:
            row.upstream_sha, row.link_rule = f.upstream.lower(), UPSTREAM_LINE
            return
        row.upstream_sha = row.link_rule = None
        if f.reverts_upstream:
            row.error = (
                f"a stable-only revert (of upstream {f.reverts_upstream[:12]}): no mainline "
                "commit of its own"
            )
            return
        if f.diff is None:
            row.error = f"{row.directory}/{row.filename}: no upstream line and no diff"
            self._error(row.error)
            return
        row.paths_key = diff_paths_key(f.diff)
        self.pending.rows.append(row)
        self.pending.diffs.append(git_form(f.diff))

    def _patch_ids(self) -> None:
        ids = self.repo.stable_patch_ids(self.pending.diffs)
        for row, pid in zip(self.pending.rows, ids, strict=True):
            row.patch_id = pid
            if pid is None:
                row.error = (
                    f"{row.directory}/{row.filename}: no upstream line, and git finds no patch "
                    "in its diff"
                )
                self._error(row.error)

    def _row(self, series: str, directory: str, name: str, row: QueuePatch | None) -> QueuePatch:
        if row is None:
            row = QueuePatch(
                source_id=self.source.id,
                series=series,
                directory=directory,
                filename=name,
                state="",
                subject=name,
                stable_dep_of="[]",
                head=self.head,
                changed_at=self.at,
            )
            self.s.add(row)
            self.rows[(directory, name)] = row
        return row

    def _enter(self, row: QueuePatch, state: str) -> None:
        if row.state != state:
            row.state, row.head, row.changed_at = state, self.head, self.at
            if state != DROPPED:
                row.dropped_head = row.dropped_head if state == QUEUED else None
            self.report.changed += 1

    def _error(self, text: str) -> None:
        self.report.errors.append(text)


def _is_patch(e: TreeEntry) -> bool:
    return e.kind == "blob" and e.name != "series" and not e.name.startswith(".")


def link_queue(s: Session) -> int:
    """Link queue patches that have no upstream line to the mainline commit with their patch-id.

    Runs after each queue sync and each git sync: a patch read before its commit was synced
    (or before the commit's patch-id was computed) is linked as soon as the store has it."""
    s.flush()
    matches: dict[int, tuple[int, str]] = {}
    for row_id, sha, order in s.execute(
        select(QueuePatch.id, Commit.sha, Commit.mainline_order)
        .join(Commit, Commit.patch_id == QueuePatch.patch_id)
        .where(QueuePatch.upstream_sha.is_(None), Commit.mainline.is_(True))
    ):
        # The oldest mainline commit with the id, as backports on branches are linked.
        key = (order if order is not None else 1 << 62, sha)
        if row_id not in matches or key < matches[row_id]:
            matches[row_id] = key
    linked = 0
    for row in s.scalars(
        select(QueuePatch).where(
            QueuePatch.upstream_sha.is_(None), QueuePatch.patch_id.is_not(None)
        )
    ):
        if row.id in matches:
            row.upstream_sha, row.link_rule, row.error = matches[row.id][1], PATCH_ID, None
            linked += 1
            continue
        error = (
            f"{row.directory}/{row.filename}: not linked: no upstream line, and no mainline "
            f"commit synced so far has its patch-id {str(row.patch_id)[:12]} (linked when "
            "one is)"
        )
        if row.error != error:
            row.error = error
    return linked


def forget_reads(s: Session, source_names: Sequence[str]) -> None:
    """Make the next sync of these queue sources parse every file again (``tracker reparse``).

    States and positions stay: they come from ``series``, which is read again too."""
    for src in s.scalars(select(Source).where(Source.name.in_(list(source_names)))):
        src.cursor = json.dumps({"force": True})
