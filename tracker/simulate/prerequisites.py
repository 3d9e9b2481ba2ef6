"""In-memory applicability checker: would these commits (or this mail patch) apply to a branch?

This is the only module that imports pygit2. Nothing here touches a work tree, an index file or a
ref; results are computed on trees held in memory (merged blobs and rebuilt trees are written to
the object database, which is harmless and lets tree ids be compared with git's).

A cherry-pick is a three-way merge: base = the commit's parent tree, ours = the current tree,
theirs = the commit's tree (design.md section 4). A whole-tree merge costs time proportional to
the size of the tree; here only the paths the commit touches are looked at, plus the paths that
rename detection drags in, so the cost follows the size of the patch. The rules follow git's
merge-ort, read from its source and checked against git 2.39 by the differential test: which
rename sources are "relevant", exact then basename then matrix rename matching with git's own
similarity estimate, directory renames in the default "conflict" mode, and handle_content_merge's
mode and content rules. Content merges are git's own (tracker.textmerge: histogram diff and
xdl_merge as merge-ort calls them), not libgit2's, whose merge diffs with myers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, cast

import pygit2
from pygit2.enums import DiffOption

from tracker import textmerge
from tracker.errors import GitError, InvalidRevisionError, RepositoryError, UnknownCommitError

__all__ = [
    "ConflictHunk",
    "ConflictKind",
    "Evidence",
    "FileConflict",
    "HunkText",
    "LineRange",
    "MergeOptions",
    "PrerequisiteMode",
    "PrerequisiteResult",
    "RenameNote",
    "SearchLimits",
    "SearchSession",
    "SearchStats",
    "SimulationResult",
    "StepResult",
    "Verdict",
    "apply_mail_patch",
    "find_prerequisites",
    "simulate_sequence",
]

# ---------------------------------------------------------------------------------------------
# Public result types
# ---------------------------------------------------------------------------------------------


class Verdict(StrEnum):
    """What became of one step.

    CONFLICT and MANUAL both mean "does not apply here"; MANUAL says more: the prerequisite
    search ran to its end and no verified, minimal, small set of commits makes the step apply,
    so a human has to backport it. CONFLICT is used when the search did not run (switched off,
    budget spent) or when it names the verified prerequisites the step needs. BLOCKED: the step
    conflicts on lines an earlier step of the same sequence changes, and that step did not apply
    (or the caller said it depends on a step that failed).
    """

    CLEAN = "clean"
    CONFLICT = "conflict"
    ALREADY_PRESENT = "already-present"
    BLOCKED = "blocked"
    MANUAL = "manual"


class PrerequisiteMode(StrEnum):
    OFF = "off"
    BOUNDED = "bounded"
    FULL = "full"


class ConflictKind(StrEnum):
    CONTENT = "content"
    BINARY = "binary"
    SYMLINK = "symlink"
    SUBMODULE = "submodule"
    MODE = "mode"
    ADD_ADD = "add-add"
    TYPE_CHANGE = "type-change"
    # ours changed the file, the commit deletes it
    MODIFY_DELETE = "modify-delete"
    # the commit changes a file that ours does not have (and no rename was found): git calls
    # this modify/delete too, but for a backport it means "needs an earlier patch or a rename"
    MISSING_FILE = "missing-file"
    RENAME_DELETE = "rename-delete"
    RENAME_RENAME = "rename-rename"
    RENAME_COLLISION = "rename-collision"
    DIRECTORY_FILE = "directory-file"
    FILE_LOCATION = "file-location"
    DIRECTORY_RENAME_SPLIT = "directory-rename-split"
    PATCH_DOES_NOT_APPLY = "patch-does-not-apply"
    BINARY_PATCH = "binary-patch"


@dataclass(frozen=True)
class LineRange:
    """1-based line range; when count is 0 the range is empty and sits just before line start."""

    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + max(self.count, 1) - 1

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class ConflictHunk:
    """A change of the commit that collides with a change on our side.

    base: lines in the commit's parent (what blame looks at); theirs: the same change in the
    commit; ours: the colliding lines in the current tree (None when ours lacks the file).
    """

    base: LineRange
    theirs: LineRange
    ours: LineRange | None

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class FileConflict:
    path: str
    kind: ConflictKind
    message: str
    base_path: str | None = None
    hunks: tuple[ConflictHunk, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class RenameNote:
    """A rename the merge followed. side is "theirs" (the commit renames) or "ours"."""

    side: str
    old_path: str
    new_path: str
    similarity: int

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class Evidence:
    commit: str
    subject: str
    path: str
    lines: LineRange | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class PrerequisiteResult:
    """The prerequisite search's answer for one conflicting step.

    stopped is non-empty when a time budget ended the search before it could decide; blockers
    are earlier, unapplied steps of the sequence that last changed the conflicting lines;
    rejected names candidates left out because they are too big for a bounded search.
    """

    fix: str
    found: bool
    commits: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    tried: tuple[tuple[str, ...], ...]
    candidates: tuple[str, ...]
    message: str
    mode: str = "full"
    stopped: str = ""
    blockers: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class HunkText:
    """One conflicting hunk as a maintainer reads a FAILED patch: where, and the actual lines.

    expects: the lines the patch expects (the fix's parent, lines ``base``); has: what the
    branch has there (lines ``ours``; empty with ours None when the branch lacks the file).
    Both are trimmed to a few lines of bounded width; *_more counts the lines left out.
    """

    path: str
    base: LineRange
    ours: LineRange | None
    expects: tuple[str, ...]
    has: tuple[str, ...]
    expects_more: int = 0
    has_more: int = 0

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    def text(self) -> str:
        where = f"{self.path}:{self.base.start}-{self.base.end}"
        ours = f"{self.ours.start}-{self.ours.end}" if self.ours is not None else "missing"
        return f"{where} (branch lines {ours})"


@dataclass(frozen=True)
class StepResult:
    index: int
    commit: str | None
    subject: str
    verdict: Verdict
    tree: str | None
    conflicts: tuple[FileConflict, ...] = ()
    renames: tuple[RenameNote, ...] = ()
    binary_files: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    prerequisites: PrerequisiteResult | None = None
    detail: str = ""
    # 0-based indexes, in the simulated sequence, of the steps named in blocked_by
    blocked_at: tuple[int, ...] = ()
    hunks: tuple[HunkText, ...] = ()

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.CLEAN, Verdict.ALREADY_PRESENT)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class SimulationResult:
    base: str
    base_tree: str
    final_tree: str
    steps: tuple[StepResult, ...]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for s in self.steps if s.verdict is verdict)

    def to_dict(self) -> dict[str, Any]:
        out = _as_dict(self)
        out["counts"] = {v.value: self.count(v) for v in Verdict}
        return out


@dataclass(frozen=True)
class MergeOptions:
    """Knobs that mirror git settings; defaults are git's defaults.

    count_incomplete_last_line: git 2.44 started counting a final line without a newline when it
    estimates rename similarity (before, that line was ignored). Set False to mimic older git.
    """

    rename_threshold: int = 50
    rename_limit: int = 7000
    count_incomplete_last_line: bool = True


def _as_dict(obj: object) -> dict[str, Any]:
    def conv(value: object) -> object:
        if isinstance(value, StrEnum):
            return value.value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: conv(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [conv(v) for v in value]
        return value

    result = conv(obj)
    assert isinstance(result, dict)
    return result


# ---------------------------------------------------------------------------------------------
# Small helpers: modes, paths, revisions
# ---------------------------------------------------------------------------------------------

_S_IFMT = 0o170000
_S_IFREG = 0o100000
_S_IFLNK = 0o120000
_S_IFGITLINK = 0o160000
_MODE_TREE = 0o040000
_MAX_SCORE = 60000
_BINARY_PROBE = 8000
_HEX_RE = re.compile(r"[0-9a-fA-F]{4,64}")
_REF_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]*")


class _Ver(NamedTuple):
    oid: pygit2.Oid
    mode: int


def _is_blob(ver: _Ver) -> bool:
    """A regular file or a symlink (a gitlink names a commit of another repository)."""
    return _fmt(ver.mode) != _S_IFGITLINK


def _blob_of(eng: _Engine, ver: _Ver | None) -> pygit2.Blob | None:
    if ver is None or not _is_blob(ver):
        return None
    return cast(pygit2.Blob, eng.repo[ver.oid])


def _is_reg(mode: int) -> bool:
    return (mode & _S_IFMT) == _S_IFREG


def _fmt(mode: int) -> int:
    return mode & _S_IFMT


def _dirname(path: str) -> str:
    return path.rpartition("/")[0]


def _basename(path: str) -> str:
    return path.rpartition("/")[2]


def _ancestors(path: str) -> Iterable[str]:
    """Proper ancestor directories of a path, nearest first, excluding the root."""
    d = _dirname(path)
    while d:
        yield d
        d = _dirname(d)


def _open(repo_path: str | Path) -> pygit2.Repository:
    try:
        return pygit2.Repository(str(repo_path))
    except (pygit2.GitError, KeyError, OSError) as exc:
        raise RepositoryError(f"{repo_path}: not a git repository ({exc})") from exc


def _check_rev(rev: str) -> None:
    if not isinstance(rev, str) or not rev or rev.startswith("-"):
        raise InvalidRevisionError(f"invalid revision {rev!r}")
    bad = ".." in rev or "@{" in rev or rev.endswith((".lock", "/", ".")) or "//" in rev
    if not (_HEX_RE.fullmatch(rev) or (_REF_RE.fullmatch(rev) and not bad)):
        raise InvalidRevisionError(f"invalid revision {rev!r}")


def _resolve_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    _check_rev(rev)
    obj: pygit2.Object | None = None
    if _HEX_RE.fullmatch(rev):
        try:
            obj = repo.get(rev)
        except (ValueError, pygit2.GitError) as exc:
            raise UnknownCommitError(f"{rev}: ambiguous or unknown object ({exc})") from exc
    if obj is None:
        try:
            return repo.lookup_reference_dwim(rev).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            obj = None
    if obj is None:
        raise UnknownCommitError(f"{rev}: no such commit")
    try:
        return obj.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        raise UnknownCommitError(f"{rev}: not a commit") from exc


def _subject(commit: pygit2.Commit) -> str:
    return commit.message.split("\n", 1)[0].strip()


# ---------------------------------------------------------------------------------------------
# git's rename similarity estimate (diffcore-delta.c), reimplemented
# ---------------------------------------------------------------------------------------------

_HASHBASE = 107927
_MASK32 = 0xFFFFFFFF


@lru_cache(maxsize=1 << 16)
def _chunk_hash(chunk: bytes) -> int:
    a1 = a2 = 0
    for c in chunk:
        old1 = a1
        a1 = (((a1 << 7) ^ (a2 >> 25)) + c) & _MASK32
        a2 = ((a2 << 7) ^ (old1 >> 25)) & _MASK32
    return ((a1 + a2 * 0x61) & _MASK32) % _HASHBASE


def _span_counts(data: bytes, count_last: bool) -> Counter[int]:
    """Bytes per chunk hash, chunks being lines cut at 64 bytes, as git's hash_chars() does."""
    if b"\0" not in data[:_BINARY_PROBE]:
        # git skips a CR that precedes a LF in text
        data = data.replace(b"\r\n", b"\n")
    counts: Counter[int] = Counter()
    lines = data.split(b"\n")
    tail = lines.pop()
    for line in lines:
        line += b"\n"
        for i in range(0, len(line), 64):
            piece = line[i : i + 64]
            counts[_chunk_hash(piece)] += len(piece)
    for i in range(0, len(tail), 64):
        piece = tail[i : i + 64]
        if len(piece) == 64 or count_last:
            counts[_chunk_hash(piece)] += len(piece)
    return counts


# ---------------------------------------------------------------------------------------------
# Merge engine
# ---------------------------------------------------------------------------------------------


class _Rel(IntEnum):
    """dirs_removed relevance (merge-ort's enum dir_rename_relevance)."""

    NOT_RELEVANT = 0
    FOR_ANCESTOR = 1
    FOR_SELF = 2


_CONTENT = 1
_LOCATION = 2
_UNKNOWN_DIR = "/"

OURS, THEIRS = 1, 2
_SIDE_NAME = {OURS: "ours", THEIRS: "theirs"}

Changes = dict[str, tuple[_Ver | None, _Ver | None]]


@dataclass
class _Entry:
    stages: list[_Ver | None]
    match_mask: int = 0
    resolved: bool = False
    result: _Ver | None = None
    path_conflict: tuple[ConflictKind, str] | None = None
    base_path: str | None = None


@dataclass
class _SideRenames:
    pairs: list[tuple[str, str, int]] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=dict)


@dataclass
class _Outcome:
    tree: pygit2.Oid | None
    conflicts: list[FileConflict]
    renames: list[RenameNote]
    binary: list[str]


_TREE_CACHE_ENTRIES = 100_000
# Blob contents kept (bytes), and merge or diff answers kept (entries; each a few hundred bytes)
_BLOB_CACHE_BYTES = 48 << 20
_MERGE_CACHE = 8192


class _Engine:
    """Holds a repository and caches shared by every merge of one simulation run."""

    def __init__(self, repo: pygit2.Repository, options: MergeOptions) -> None:
        self.repo = repo
        self.opts = options
        self._spans: dict[pygit2.Oid, Counter[int]] = {}
        self._sizes: dict[pygit2.Oid, int] = {}
        self._empty_blob: pygit2.Oid | None = None
        self._trees: dict[bytes, dict[str, tuple[bytes, int]]] = {}
        self._tree_entries = 0
        self.min_score = options.rename_threshold * _MAX_SCORE // 100
        # Blob contents: a kernel file of a fast-imported or packed history is a long delta
        # chain, and one pick reads the same few big files (mm/hugetlb.c: 200 KB) several
        # times (merge, binary probe, hunks), as do the next picks of the plan and the search.
        self._blobs: dict[pygit2.Oid, bytes] = {}
        self._blob_bytes = 0
        self._binary: dict[pygit2.Oid, bool] = {}
        # Merges and diffs of the same blobs give the same answer: a re-plan round, a search
        # re-verifying a set and the picks of its candidates merge the same versions again.
        self._merges: dict[
            tuple[pygit2.Oid, pygit2.Oid, pygit2.Oid],
            tuple[pygit2.Oid | None, tuple[textmerge.Conflict, ...]],
        ] = {}
        self._hunks: dict[tuple[pygit2.Oid, pygit2.Oid], list[tuple[int, int, int, int]]] = {}
        self._scripts = textmerge.DiffCache()

    # --- object access ------------------------------------------------------------------

    def data(self, oid: pygit2.Oid) -> bytes:
        data = self._blobs.get(oid)
        if data is None:
            data = cast(pygit2.Blob, self.repo[oid]).data
            if self._blob_bytes + len(data) > _BLOB_CACHE_BYTES:
                self._blobs.clear()
                self._blob_bytes = 0
            self._blobs[oid] = data
            self._blob_bytes += len(data)
        return data

    def size(self, oid: pygit2.Oid) -> int:
        size = self._sizes.get(oid)
        if size is None:
            size = self.repo.odb.read_header(oid)[1]
            if len(self._sizes) > 200_000:
                self._sizes.clear()
            self._sizes[oid] = size
        return size

    def empty_blob(self) -> pygit2.Oid:
        if self._empty_blob is None:
            self._empty_blob = self.repo.create_blob(b"")
        return self._empty_blob

    def is_empty_blob(self, ver: _Ver) -> bool:
        return _is_reg(ver.mode) and self.size(ver.oid) == 0

    @staticmethod
    def at(tree: pygit2.Tree, path: str) -> _Ver | None:
        """The file (blob, symlink or gitlink) at path, or None (missing or a directory)."""
        try:
            obj = tree[path]
        except (KeyError, ValueError, pygit2.GitError):
            return None
        mode = int(obj.filemode)
        if mode == _MODE_TREE:
            return None
        return _Ver(obj.id, mode)

    @staticmethod
    def subtree(tree: pygit2.Tree, path: str) -> pygit2.Tree | None:
        if not path:
            return tree
        try:
            obj = tree[path]
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return obj if isinstance(obj, pygit2.Tree) else None

    def changes(self, a: pygit2.Tree, b: pygit2.Tree) -> Changes:
        """Files that differ between two trees: path -> (version in a, version in b).

        libgit2's tree diff costs several milliseconds even for a one-line commit, so small
        differences are found by walking only the subtrees whose ids differ; big ones (our
        branch against a distant base) go to libgit2, which is faster per entry.
        """
        out: Changes = {}
        if a.id != b.id:
            self._walk_changes(a, b, "", out)
        return out

    def big_changes(self, a: pygit2.Tree, b: pygit2.Tree) -> Changes:
        out: Changes = {}
        if a.id == b.id:
            return out
        diff = a.diff_to_tree(b, flags=DiffOption.SKIP_BINARY_CHECK)
        for delta in diff.deltas:
            old = delta.old_file
            new = delta.new_file
            zero_old = int(old.mode) == 0
            zero_new = int(new.mode) == 0
            path = new.path if zero_old else old.path
            prev = out.get(path, (None, None))
            before = prev[0] if zero_old else _Ver(old.id, int(old.mode))
            after = prev[1] if zero_new else _Ver(new.id, int(new.mode))
            out[path] = (before, after)
        return out

    def entries(self, tree: bytes | None) -> dict[str, tuple[bytes, int]]:
        """Entries (raw id, mode) of a tree object, parsed from its raw form and cached.

        Going through pygit2's TreeEntry objects builds an Oid and an enum per entry, which
        made tree walks the slowest part of a pick.
        """
        if tree is None:
            return {}
        cached = self._trees.get(tree)
        if cached is None:
            cached = _parse_tree(self.repo.odb.read(tree.hex())[1], len(tree))
            # Bounded by entries, not trees: a run over a long plan meets thousands of versions
            # of big directories (include/linux has 1,000+ entries), ~450 bytes per entry.
            if self._tree_entries > _TREE_CACHE_ENTRIES:
                self._trees.clear()
                self._tree_entries = 0
            self._trees[tree] = cached
            self._tree_entries += len(cached)
        return cached

    def _walk_changes(
        self, a: pygit2.Tree | None, b: pygit2.Tree | None, prefix: str, out: Changes
    ) -> None:
        self._walk_ids(
            a.id.raw if a is not None else None, b.id.raw if b is not None else None, prefix, out
        )

    def _walk_ids(self, a: bytes | None, b: bytes | None, prefix: str, out: Changes) -> None:
        left = self.entries(a)
        right = self.entries(b)
        for name in left.keys() | right.keys():
            x, y = left.get(name), right.get(name)
            if x == y:
                continue
            x_tree = x is not None and x[1] == _MODE_TREE
            y_tree = y is not None and y[1] == _MODE_TREE
            if x_tree or y_tree:
                self._walk_ids(
                    x[0] if x is not None and x_tree else None,
                    y[0] if y is not None and y_tree else None,
                    f"{prefix}{name}/",
                    out,
                )
            before = _raw_ver(x) if x is not None and not x_tree else None
            after = _raw_ver(y) if y is not None and not y_tree else None
            if before is not None or after is not None:
                out[prefix + name] = (before, after)

    # --- similarity -----------------------------------------------------------------------

    def spans(self, oid: pygit2.Oid) -> Counter[int]:
        counts = self._spans.get(oid)
        if counts is None:
            counts = _span_counts(self.data(oid), self.opts.count_incomplete_last_line)
            if len(self._spans) > 4096:
                self._spans.clear()
            self._spans[oid] = counts
        return counts

    def similarity(self, src: _Ver, dst: _Ver, min_score: int) -> int:
        if not (_is_reg(src.mode) and _is_reg(dst.mode)):
            return 0
        s_size, d_size = self.size(src.oid), self.size(dst.oid)
        max_size, base_size = max(s_size, d_size), min(s_size, d_size)
        if max_size * (_MAX_SCORE - min_score) < (max_size - base_size) * _MAX_SCORE:
            return 0
        if d_size == 0:
            return 0
        s_spans, d_spans = self.spans(src.oid), self.spans(dst.oid)
        copied = sum(min(cnt, d_spans[h]) for h, cnt in s_spans.items() if h in d_spans)
        return copied * _MAX_SCORE // max_size

    # --- content merge --------------------------------------------------------------------

    def file_merge(
        self, base: pygit2.Oid, ours: pygit2.Oid, theirs: pygit2.Oid
    ) -> tuple[pygit2.Oid | None, tuple[textmerge.Conflict, ...]]:
        """git's content merge of three blobs (tracker.textmerge): the merged blob, or None
        and the conflicting regions."""
        key = (base, ours, theirs)
        known = self._merges.get(key)
        if known is not None:
            return known
        result = textmerge.merge(
            self.data(base),
            self.data(ours),
            self.data(theirs),
            cache=self._scripts,
            keys=(base, ours, theirs),
        )
        if result.merged is None:
            known = (None, result.conflicts)
        else:
            known = (self.repo.create_blob(result.merged), ())
        if len(self._merges) >= _MERGE_CACHE:
            self._merges.clear()
        self._merges[key] = known
        return known

    def is_binary(self, oid: pygit2.Oid) -> bool:
        known = self._binary.get(oid)
        if known is None:
            if len(self._binary) > 200_000:
                self._binary.clear()
            known = self._binary[oid] = b"\0" in self.data(oid)[:_BINARY_PROBE]
        return known

    def hunks(self, a: pygit2.Oid, b: pygit2.Oid) -> list[tuple[int, int, int, int]]:
        """Changed regions from a to b as the merge diffs them, in hunk-header numbers."""
        key = (a, b)
        known = self._hunks.get(key)
        if known is None:
            known = [
                (i1 + 1 if c1 else i1, c1, i2 + 1 if c2 else i2, c2)
                for i1, c1, i2, c2 in textmerge.diff_hunks(
                    self.data(a), self.data(b), self._scripts, (a, b)
                )
            ]
            if len(self._hunks) >= _MERGE_CACHE:
                self._hunks.clear()
            self._hunks[key] = known
        return known

    # --- tree building --------------------------------------------------------------------

    def build(
        self,
        tree: pygit2.Tree | None,
        updates: Mapping[str, _Ver | None],
        prefix: str,
        df: list[str],
    ) -> pygit2.Oid | None:
        """Apply path updates to a tree, rebuilding only the touched subtrees.

        Returns None for an empty tree (git never stores one) and records paths where a file
        and a directory would both exist in df.
        """
        direct: dict[str, _Ver | None] = {}
        nested: dict[str, dict[str, _Ver | None]] = {}
        for path, ver in updates.items():
            head, sep, rest = path.partition("/")
            if sep:
                nested.setdefault(head, {})[rest] = ver
            else:
                direct[head] = ver
        builder = self.repo.TreeBuilder(tree) if tree is not None else self.repo.TreeBuilder()
        for name in sorted(direct.keys() | nested.keys()):
            self._build_entry(builder, tree, name, direct, nested, prefix, df)
        if len(builder) == 0:
            return None
        return builder.write()

    def _build_entry(
        self,
        builder: pygit2.TreeBuilder,
        tree: pygit2.Tree | None,
        name: str,
        direct: Mapping[str, _Ver | None],
        nested: Mapping[str, Mapping[str, _Ver | None]],
        prefix: str,
        df: list[str],
    ) -> None:
        existing = tree[name] if tree is not None and name in tree else None
        old_tree = existing if isinstance(existing, pygit2.Tree) else None
        old_file = (
            _Ver(existing.id, int(existing.filemode))
            if existing is not None and old_tree is None
            else None
        )
        if name in nested:
            sub = self.build(old_tree, nested[name], f"{prefix}{name}/", df)
        else:
            sub = old_tree.id if old_tree is not None else None
        new_file = direct.get(name, old_file)
        if sub is not None and new_file is not None:
            df.append(prefix + name)
            return
        if sub is not None:
            builder.insert(name, sub, _MODE_TREE)
        elif new_file is not None:
            builder.insert(name, new_file.oid, new_file.mode)
        elif existing is not None:
            builder.remove(name)


class _Merge:
    """One three-way merge (cherry-pick semantics: base = parent, ours = HEAD, theirs = commit)."""

    def __init__(
        self,
        eng: _Engine,
        base: pygit2.Tree,
        ours: pygit2.Tree,
        theirs: pygit2.Tree,
    ) -> None:
        self.eng = eng
        self.trees = (base, ours, theirs)
        self.tchanges = eng.changes(base, theirs)
        self._ochanges: Changes | None = None
        self.entries: dict[str, _Entry] = {}
        self.conflicts: list[FileConflict] = []
        self.renames: list[RenameNote] = []
        self.binary: list[str] = []

    # --- entries --------------------------------------------------------------------------

    def entry(self, path: str) -> _Entry:
        e = self.entries.get(path)
        if e is None:
            stages = [_Engine.at(t, path) for t in self.trees]
            e = _Entry(stages, _match_mask(stages))
            self.entries[path] = e
        return e

    def ochanges(self) -> Changes:
        if self._ochanges is None:
            self._ochanges = self.eng.big_changes(self.trees[0], self.trees[1])
        return self._ochanges

    def side_changes(self, side: int) -> Changes:
        return self.ochanges() if side == OURS else self.tchanges

    def conflict(self, path: str, kind: ConflictKind, message: str, **kw: Any) -> None:
        self.conflicts.append(FileConflict(path, kind, message, **kw))

    # --- driver ---------------------------------------------------------------------------

    def run(self) -> _Outcome:
        ours = self.trees[OURS]
        if not self.tchanges:
            return _Outcome(ours.id, [], [], [])
        for path in self.tchanges:
            self.entry(path)
        side_renames = {side: self.detect(side) for side in (OURS, THEIRS)}
        dir_renames = self.directory_renames(side_renames)
        self.check_directory_renames(side_renames, dir_renames)
        self.process_renames(side_renames)
        for path in sorted(self.entries):
            e = self.entries[path]
            if not e.resolved:
                self.resolve(path, e)
        if self.conflicts:
            return _Outcome(None, self.conflicts, self.renames, sorted(self.binary))
        updates = {p: e.result for p, e in self.entries.items() if e.result != _Engine.at(ours, p)}
        df: list[str] = []
        tree = self.eng.build(ours, updates, "", df) if updates else ours.id
        for path in df:
            self.conflict(path, ConflictKind.DIRECTORY_FILE, f"{path}: file/directory conflict")
        if tree is None:
            tree = self.eng.repo.TreeBuilder().write()
        return _Outcome(
            None if self.conflicts else tree, self.conflicts, self.renames, sorted(self.binary)
        )

    # --- rename relevance -----------------------------------------------------------------

    def relevant_sources(self, side: int) -> dict[str, int]:
        """merge-ort's relevant_sources: deleted paths whose rename matters, and why."""
        other = THEIRS if side == OURS else OURS
        rel: dict[str, int] = {}
        for path, (b, t) in self.tchanges.items():
            if b is None:
                continue
            e = self.entries[path]
            if side == THEIRS and t is None and e.stages[OURS] != b:
                rel[path] = _CONTENT
            if side == OURS and e.stages[OURS] is None:
                rel[path] = _CONTENT
        self_dirs = self.location_dirs(side, other)
        if self_dirs:
            for path, (b, s) in self.side_changes(side).items():
                deleted = b is not None and s is None and path not in rel
                if deleted and any(d in self_dirs for d in _ancestors(path)):
                    rel[path] = _LOCATION
        return rel

    def location_dirs(self, side: int, other: int) -> set[str]:
        """Directories removed on side that the other side added files to (RELEVANT_FOR_SELF)."""
        base = self.trees[0]
        side_tree, other_tree = self.trees[side], self.trees[other]
        found: set[str] = set()
        if other == THEIRS:
            for path, (b, t) in self.tchanges.items():
                d = _dirname(path)
                if not (b is None and t is not None and d) or d in found:
                    continue
                if _Engine.subtree(base, d) is not None and _Engine.subtree(side_tree, d) is None:
                    found.add(d)
            return found
        candidates = {
            d for p, (b, t) in self.tchanges.items() if b and not t for d in _ancestors(p)
        }
        for d in sorted(candidates):
            if _Engine.subtree(side_tree, d) is not None:
                continue
            ours_d, base_d = _Engine.subtree(other_tree, d), _Engine.subtree(base, d)
            if ours_d is None or base_d is None:
                continue
            base_files = {e.name for e in base_d if int(e.filemode) != _MODE_TREE}
            if any(int(e.filemode) != _MODE_TREE and e.name not in base_files for e in ours_d):
                found.add(d)
        return found

    def dirs_removed(self, side: int, self_dirs: set[str]) -> dict[str, _Rel]:
        side_tree = self.trees[side]
        removed: dict[str, _Rel] = {}
        for path, (b, s) in self.side_changes(side).items():
            if b is None or s is not None:
                continue
            for d in _ancestors(path):
                if d in removed:
                    break
                if _Engine.subtree(side_tree, d) is not None:
                    break
                removed[d] = _Rel.NOT_RELEVANT
        for d in removed:
            if d in self_dirs:
                removed[d] = _Rel.FOR_SELF
            elif any(a in self_dirs for a in _ancestors(d)):
                removed[d] = _Rel.FOR_ANCESTOR
        return removed

    # --- regular rename detection (diffcore_rename_extended) -----------------------------

    def detect(self, side: int) -> _SideRenames:
        relevant = self.relevant_sources(side)
        if not relevant:
            return _SideRenames()
        other = THEIRS if side == OURS else OURS
        removed = self.dirs_removed(side, self.location_dirs(side, other))
        changes = self.side_changes(side)
        ordered = sorted(changes.items(), key=self.queue_key(side))
        srcs = {
            p: b
            for p, (b, s) in ordered
            if b is not None and s is None and not self.eng.is_empty_blob(b)
        }
        dsts = {
            p: s
            for p, (b, s) in ordered
            if b is None and s is not None and not self.eng.is_empty_blob(s)
        }
        result = _SideRenames()
        if srcs and dsts:
            _RenameDetector(self.eng, srcs, dsts, relevant, removed, result).run()
        return result

    # --- the order in which merge-ort queues a side's adds and deletes -------------------

    def queue_key(self, side: int) -> Callable[[tuple[str, Any]], tuple[int, str]]:
        """Sort key reproducing merge-ort's traversal order for one side's changes.

        Rename candidates with equal scores are decided by queue order. merge-ort walks the
        trees depth-first in path order but postpones directories that only one side changed,
        and later walks those in the iteration order of git's hashmap.
        """
        deferred: dict[int, list[str]] = {OURS: [], THEIRS: []}
        self.walk_deferred("", [t.id.raw for t in self.trees], 0, deferred)
        rank = {d: i + 1 for i, d in enumerate(_git_hashmap_order(deferred[side]))}

        def key(item: tuple[str, Any]) -> tuple[int, str]:
            path = item[0]
            parts = path.split("/")
            for i in range(1, len(parts)):
                r = rank.get("/".join(parts[:i]))
                if r is not None:
                    return r, path
            return 0, path

        return key

    def walk_deferred(
        self, d: str, ids: Sequence[bytes | None], mask: int, out: dict[int, list[str]]
    ) -> None:
        children: dict[str, list[tuple[bytes, int] | None]] = {}
        for k, oid in enumerate(ids):
            for name, ver in self.eng.entries(oid).items():
                children.setdefault(name, [None, None, None])[k] = ver
        dirs = sorted(
            (
                n
                for n, vs in children.items()
                if any(v is not None and v[1] == _MODE_TREE for v in vs)
            ),
            key=lambda n: n + "/",
        )
        for name in dirs:
            self.visit_dir(f"{d}/{name}" if d else name, children[name], mask, out)

    def visit_dir(
        self,
        path: str,
        ents: list[tuple[bytes, int] | None],
        mask: int,
        out: dict[int, list[str]],
    ) -> None:
        ids = [v[0] if v is not None and v[1] == _MODE_TREE else None for v in ents]
        dirmask = sum(1 << k for k in range(3) if ids[k] is not None)
        filemask = sum(1 << k for k in range(3) if ents[k] is not None and ids[k] is None)
        m1 = ids[0] is not None and ids[0] == ids[1]
        m2 = ids[0] is not None and ids[0] == ids[2]
        if m1 and m2:
            return
        if mask != 7 and dirmask in (3, 5):
            mask = dirmask & ~1
        side = THEIRS if m1 else OURS if m2 else 0
        if filemask == 0 and dirmask in (2, 4):
            side = dirmask // 2
        if mask != 7 and side:
            out[side].append(path)
            return
        if mask in (2, 4) and self.has_added_file(ids, mask):
            mask = 7
        self.walk_deferred(path, ids, mask, out)

    def has_added_file(self, ids: Sequence[bytes | None], mask: int) -> bool:
        """Does the directory hold a file present only on the side in mask (the 0x07 trigger)?"""
        names: dict[str, int] = {}
        for k, oid in enumerate(ids):
            for name, ver in self.eng.entries(oid).items():
                if ver[1] != _MODE_TREE:
                    names[name] = names.get(name, 0) | (1 << k)
        return mask in names.values()

    # --- directory renames ----------------------------------------------------------------

    def directory_renames(
        self, side_renames: Mapping[int, _SideRenames]
    ) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {OURS: {}, THEIRS: {}}
        for side, sr in side_renames.items():
            for old_dir, counts in sorted(sr.counts.items()):
                if not counts:
                    continue
                top = max(counts.values())
                best = [d for d, c in counts.items() if c == top]
                if len(best) > 1:
                    self.conflict(
                        old_dir,
                        ConflictKind.DIRECTORY_RENAME_SPLIT,
                        f"unclear where {old_dir} was renamed to ({_SIDE_NAME[side]})",
                    )
                else:
                    out[side][old_dir] = best[0]
        for d in set(out[OURS]) & set(out[THEIRS]):
            del out[OURS][d]
            del out[THEIRS][d]
        return out

    def added_paths(self, side: int) -> list[str]:
        """Paths a side adds (unpaired adds and rename targets), as merge-ort's A/R pairs."""
        changes = self.side_changes(side)
        return sorted(p for p, (b, s) in changes.items() if b is None and s is not None)

    def check_directory_renames(
        self, side_renames: Mapping[int, _SideRenames], dir_renames: Mapping[int, Mapping[str, str]]
    ) -> None:
        if not dir_renames[OURS] and not dir_renames[THEIRS]:
            return
        added = {
            side: self.added_paths(side) if dir_renames[3 - side] else [] for side in (OURS, THEIRS)
        }
        collisions: dict[int, dict[str, list[str]]] = {OURS: {}, THEIRS: {}}
        for side in (OURS, THEIRS):
            for path in added[side]:
                new = _apply_dir_rename(path, dir_renames[3 - side])
                if new is not None:
                    collisions[side].setdefault(new, []).append(path)
        for side in (OURS, THEIRS):
            other = 3 - side
            for path in added[side]:
                if path in collisions[other]:
                    continue
                hit = _find_dir_rename(path, dir_renames[other])
                if hit is None or hit[1] in dir_renames[side]:
                    continue
                new_path = _apply_dir_rename(path, dir_renames[other])
                self.conflict(
                    path,
                    ConflictKind.FILE_LOCATION,
                    f"{path} added by {_SIDE_NAME[side]} inside {hit[0]}, which "
                    f"{_SIDE_NAME[other]} renamed to {hit[1]}; perhaps it belongs at {new_path}",
                )

    # --- process_renames ------------------------------------------------------------------

    def process_renames(self, side_renames: Mapping[int, _SideRenames]) -> None:
        combined = [
            (src, dst, score, side)
            for side in (OURS, THEIRS)
            for src, dst, score in side_renames[side].pairs
        ]
        combined.sort(key=lambda item: item[0])
        i = 0
        while i < len(combined):
            src, dst, score, side = combined[i]
            if side == THEIRS or src in self.tchanges or dst in self.tchanges:
                # ours-side renames of files the commit does not touch are just noise
                note = RenameNote(_SIDE_NAME[side], src, dst, score * 100 // _MAX_SCORE)
                self.renames.append(note)
            if i + 1 < len(combined) and combined[i + 1][0] == src:
                self.rename_rename(src, dst, combined[i + 1][1], side)
                i += 2
                continue
            self.one_rename(src, dst, side)
            i += 1

    def rename_rename(self, src: str, dst1: str, dst2: str, first_side: int) -> None:
        old = self.entry(src)
        if dst1 == dst2:
            new = self.entry(dst1)
            new.stages[0] = old.stages[0]
            new.base_path = src
            old.resolved, old.result = True, None
            return
        ours_dst, theirs_dst = (dst1, dst2) if first_side == OURS else (dst2, dst1)
        old.resolved = True
        for path in (ours_dst, theirs_dst):
            self.entry(path).resolved = True
        self.conflict(
            src,
            ConflictKind.RENAME_RENAME,
            f"{src} renamed to {ours_dst} by ours and to {theirs_dst} by theirs",
        )

    def one_rename(self, src: str, dst: str, side: int) -> None:
        other = 3 - side
        old, new = self.entry(src), self.entry(dst)
        source_deleted = old.stages[OURS] is None and old.stages[THEIRS] is None
        collision = new.stages[other] is not None
        new_ver, old_other = new.stages[side], old.stages[other]
        type_changed = (
            not source_deleted
            and new_ver is not None
            and old_other is not None
            and _is_reg(old_other.mode) != _is_reg(new_ver.mode)
        )
        if type_changed and collision:
            collision = False
        if collision and not source_deleted:
            self.rename_collision(src, dst, side, old, new)
        elif collision and source_deleted:
            new.path_conflict = (
                ConflictKind.RENAME_DELETE,
                f"{src} renamed to {dst} by {_SIDE_NAME[side]} but deleted by {_SIDE_NAME[other]}",
            )
            new.base_path = src
        else:
            new.stages[0] = old.stages[0]
            new.base_path = src
            if type_changed:
                old.stages[0] = None
            elif source_deleted:
                new.path_conflict = (
                    ConflictKind.RENAME_DELETE,
                    f"{src} renamed to {dst} by {_SIDE_NAME[side]} but deleted by "
                    f"{_SIDE_NAME[other]}",
                )
            else:
                new.stages[other] = old.stages[other]
        if not type_changed:
            old.resolved, old.result = True, None

    def rename_collision(self, src: str, dst: str, side: int, old: _Entry, new: _Entry) -> None:
        stages = [old.stages[0], None, None]
        stages[side] = new.stages[side]
        stages[3 - side] = old.stages[3 - side]
        merged, ok = self.content_merge(dst, stages[0], stages[OURS], stages[THEIRS], src)
        new.stages[side] = merged
        if not ok:
            new.path_conflict = (
                ConflictKind.RENAME_COLLISION,
                f"rename of {src} -> {dst} has content conflicts and collides with {dst}",
            )

    # --- process_entry --------------------------------------------------------------------

    def resolve(self, path: str, e: _Entry) -> None:
        e.resolved = True
        b, o, t = e.stages
        if e.path_conflict:
            kind, message = e.path_conflict
            self.conflict(path, kind, message, base_path=e.base_path)
            return
        if e.match_mask:
            # merge-ort decides from which sides matched in the original trees, even when a
            # rename has since replaced one of the stages
            e.result = e.stages[THEIRS] if e.match_mask == 3 else e.stages[OURS]
            return
        if o is None or t is None:
            self.resolve_one_sided(path, e, b, o, t)
            return
        if o == t or t == b:
            e.result = o
        elif o == b:
            e.result = t
        elif _fmt(o.mode) != _fmt(t.mode):
            self.conflict(
                path,
                ConflictKind.TYPE_CHANGE if b else ConflictKind.ADD_ADD,
                f"{path}: ours and theirs changed it to different kinds of file",
            )
        else:
            merged, ok = self.content_merge(path, b, o, t, e.base_path)
            e.result = merged if ok else None

    def resolve_one_sided(
        self, path: str, e: _Entry, b: _Ver | None, o: _Ver | None, t: _Ver | None
    ) -> None:
        if o is None and t is None:
            e.result = None
        elif b is None:
            e.result = o if t is None else t
        elif o is None:
            if t == b:
                e.result = None
            else:
                self.conflict(
                    path,
                    ConflictKind.MISSING_FILE,
                    f"{path}: changed by the commit but missing in the target tree",
                    base_path=e.base_path,
                    hunks=self.theirs_only_hunks(b, t),
                )
        elif o == b:
            e.result = None
        else:
            self.conflict(
                path,
                ConflictKind.MODIFY_DELETE,
                f"{path}: deleted by the commit but modified in the target tree",
                base_path=e.base_path,
            )

    def theirs_only_hunks(self, b: _Ver, t: _Ver | None) -> tuple[ConflictHunk, ...]:
        if t is None or not (_is_reg(b.mode) and _is_reg(t.mode)) or b.oid == t.oid:
            return ()
        if self.eng.is_binary(b.oid) or self.eng.is_binary(t.oid):
            return ()
        return tuple(
            ConflictHunk(_range(os, ol), _range(ns, nl), None)
            for os, ol, ns, nl in self.eng.hunks(b.oid, t.oid)
        )

    def content_merge(
        self, path: str, b: _Ver | None, o: _Ver | None, t: _Ver | None, base_path: str | None
    ) -> tuple[_Ver | None, bool]:
        """merge-ort's handle_content_merge(); returns (result, clean)."""
        assert o is not None and t is not None
        b_mode = b.mode if b is not None else 0
        clean = True
        if o.mode == t.mode or o.mode == b_mode:
            mode = t.mode
        else:
            mode, clean = o.mode, t.mode == b_mode
        if o.oid == t.oid or (b is not None and o.oid == b.oid):
            oid = t.oid
        elif b is not None and t.oid == b.oid:
            oid = o.oid
        elif _is_reg(o.mode):
            merged = self.text_merge(path, b, o, t, base_path)
            if merged is None:
                return None, False
            oid = merged
        else:
            kind = ConflictKind.SYMLINK if _fmt(o.mode) == _S_IFLNK else ConflictKind.SUBMODULE
            self.conflict(path, kind, f"{path}: both sides changed this {kind.value}")
            return None, False
        if not clean:
            self.conflict(path, ConflictKind.MODE, f"{path}: conflicting file modes")
            return None, False
        return _Ver(oid, mode), True

    def text_merge(
        self, path: str, b: _Ver | None, o: _Ver, t: _Ver, base_path: str | None
    ) -> pygit2.Oid | None:
        eng = self.eng
        two_way = b is None or _fmt(b.mode) != _fmt(o.mode)
        base_oid = eng.empty_blob() if two_way or b is None else b.oid
        if eng.is_binary(base_oid) or eng.is_binary(o.oid) or eng.is_binary(t.oid):
            self.binary.append(path)
            self.conflict(
                path, ConflictKind.BINARY, f"{path}: cannot merge binary files", base_path=base_path
            )
            return None
        merged, regions = eng.file_merge(base_oid, o.oid, t.oid)
        if merged is None:
            kind = ConflictKind.ADD_ADD if b is None else ConflictKind.CONTENT
            self.conflict(
                path,
                kind,
                f"{path}: content conflict",
                base_path=base_path,
                hunks=tuple(
                    ConflictHunk(
                        LineRange(c.base + 1, c.base_count),
                        LineRange(c.theirs + 1, c.theirs_count),
                        LineRange(c.ours + 1, c.ours_count),
                    )
                    for c in regions
                ),
            )
        return merged


def _match_mask(stages: Sequence[_Ver | None]) -> int:
    b, o, t = stages
    if b is not None and o == b:
        return 7 if t == b else 3
    if b is not None and t == b:
        return 5
    if o is not None and o == t:
        return 6
    return 0


def _range(start: int, count: int) -> LineRange:
    # git's hunk header names the line *before* an empty range; LineRange names the one after
    return LineRange(start if count else start + 1, count)


def _find_dir_rename(path: str, renames: Mapping[str, str]) -> tuple[str, str] | None:
    for d in _ancestors(path):
        if d in renames:
            return d, renames[d]
    return None


def _apply_dir_rename(path: str, renames: Mapping[str, str]) -> str | None:
    hit = _find_dir_rename(path, renames)
    if hit is None:
        return None
    old_dir, new_dir = hit
    rest = path[len(old_dir) + 1 :]
    return f"{new_dir}/{rest}" if new_dir else rest


class _RenameDetector:
    """diffcore_rename_extended() for one side of a merge: exact, basename, then matrix."""

    def __init__(
        self,
        eng: _Engine,
        srcs: Mapping[str, _Ver],
        dsts: Mapping[str, _Ver],
        relevant: dict[str, int],
        removed: dict[str, _Rel],
        out: _SideRenames,
    ) -> None:
        self.eng = eng
        self.srcs = list(srcs.items())
        self.dsts = list(dsts.items())
        self.relevant = dict(relevant)
        self.removed = dict(removed)
        self.out = out
        self.used: set[int] = set()
        self.dst_pair: dict[int, tuple[int, int]] = {}

    def run(self) -> None:
        self.exact()
        if self.eng.min_score >= _MAX_SCORE:
            self.emit()
            return
        remaining = [i for i in range(len(self.srcs)) if i not in self.used]
        guess, idx_map = self.init_dir_info()
        self.basename(remaining, guess, idx_map)
        remaining = [
            i for i in remaining if i not in self.used and self.relevant.get(self.srcs[i][0], 0)
        ]
        remaining = self.early_known_dir_renames(remaining)
        self.matrix(remaining)
        self.emit()
        self.cleanup_counts()

    def emit(self) -> None:
        for d, (si, score) in sorted(self.dst_pair.items()):
            self.out.pairs.append((self.srcs[si][0], self.dsts[d][0], score))

    def record(self, d: int, s: int, score: int) -> None:
        self.dst_pair[d] = (s, score)
        self.used.add(s)
        self.update_counts(self.srcs[s][0], self.dsts[d][0])

    def exact(self) -> None:
        by_oid: dict[pygit2.Oid, list[int]] = {}
        for i, (_, ver) in enumerate(self.srcs):
            by_oid.setdefault(ver.oid, []).append(i)
        for d, (dpath, dver) in enumerate(self.dsts):
            best, best_score, budget = -1, -1, 100
            for s in by_oid.get(dver.oid, ()):
                spath, sver = self.srcs[s]
                if not (_is_reg(sver.mode) and _is_reg(dver.mode)) and sver.mode != dver.mode:
                    continue
                if s in self.used:
                    continue
                score = 1 + (_basename(spath) == _basename(dpath))
                if score > best_score:
                    best, best_score = s, score
                    if score == 2:
                        break
                budget -= 1
                if not budget:
                    break
            if best >= 0:
                # exact renames are recorded before any counting happens (see init_dir_info)
                self.dst_pair[d] = (best, _MAX_SCORE)
                self.used.add(best)

    def init_dir_info(self) -> tuple[dict[str, str], dict[str, int]]:
        for d, (s, _) in self.dst_pair.items():
            self.update_counts(self.srcs[s][0], self.dsts[d][0])
        guess = {}
        for old_dir, counts in self.out.counts.items():
            if counts:
                guess[old_dir] = max(counts.items(), key=lambda kv: kv[1])[0]
        idx_map = {p: d for d, (p, _) in enumerate(self.dsts) if d not in self.dst_pair}
        return guess, idx_map

    def basename(
        self, remaining: list[int], guess: Mapping[str, str], idx_map: Mapping[str, int]
    ) -> None:
        min_score = self.eng.min_score + (_MAX_SCORE - self.eng.min_score) // 2
        src_by_base: dict[str, int] = {}
        for i in remaining:
            b = _basename(self.srcs[i][0])
            src_by_base[b] = -1 if b in src_by_base else i
        dst_by_base: dict[str, int] = {}
        for d, (path, _) in enumerate(self.dsts):
            if d in self.dst_pair:
                continue
            b = _basename(path)
            dst_by_base[b] = -1 if b in dst_by_base else d
        for i in remaining:
            path = self.srcs[i][0]
            if path not in self.relevant:
                continue
            b = _basename(path)
            if b not in dst_by_base:
                continue
            s_idx, d_idx = src_by_base[b], dst_by_base[b]
            if s_idx == -1 or d_idx == -1:
                s_idx = i
                new_dir = guess.get(_dirname(path))
                d_idx = idx_map.get(f"{new_dir}/{b}", -1) if new_dir is not None else -1
            if d_idx == -1 or d_idx in self.dst_pair:
                continue
            score = self.eng.similarity(self.srcs[s_idx][1], self.dsts[d_idx][1], min_score)
            if score < min_score:
                continue
            self.record(d_idx, s_idx, score)

    def early_known_dir_renames(self, remaining: list[int]) -> list[int]:
        for i in remaining:
            d = _dirname(self.srcs[i][0])
            while d and self.removed.get(d, _Rel.NOT_RELEVANT) != _Rel.NOT_RELEVANT:
                self.out.counts.setdefault(d, Counter())[_UNKNOWN_DIR] += 1
                d = _dirname(d)
        for d, counts in self.out.counts.items():
            if self.removed.get(d) == _Rel.FOR_SELF and _determinable(counts):
                self.removed[d] = _Rel.FOR_ANCESTOR
        kept = []
        for i in remaining:
            path = self.srcs[i][0]
            if self.relevant.get(path) == _LOCATION and self.location_removable(path):
                self.relevant[path] = 0
                continue
            kept.append(i)
        return kept

    def location_removable(self, path: str) -> bool:
        d = _dirname(path)
        while True:
            res = self.removed.get(d, _Rel.NOT_RELEVANT)
            if res == _Rel.NOT_RELEVANT:
                return True
            if res == _Rel.FOR_SELF:
                return False
            d = _dirname(d)

    def matrix(self, remaining: list[int]) -> None:
        dsts = [d for d in range(len(self.dsts)) if d not in self.dst_pair]
        if not dsts or not remaining:
            return
        limit = self.eng.opts.rename_limit
        if limit > 0 and len(dsts) * len(remaining) > limit * limit:
            return
        min_score = self.eng.min_score
        candidates: list[tuple[int, int, int, int]] = []
        for d in dsts:
            dpath, dver = self.dsts[d]
            slots: list[tuple[int, int, int, int] | None] = [None] * 4
            for s in remaining:
                spath, sver = self.srcs[s]
                score = self.eng.similarity(sver, dver, min_score)
                cand = (score, int(_basename(spath) == _basename(dpath)), d, s)
                worst = 0
                for k in range(1, 4):
                    if _worse(slots[k], slots[worst]):
                        worst = k
                if _worse(slots[worst], cand):
                    slots[worst] = cand
            candidates.extend(c for c in slots if c is not None)
        candidates.sort(key=lambda c: (-c[0], -c[1]))
        for score, _, d, s in candidates:
            if score < min_score:
                break
            if d in self.dst_pair or s in self.used:
                continue
            self.record(d, s, score)

    def update_counts(self, old: str, new: str) -> None:
        """update_dir_rename_counts(): credit old_dir -> new_dir for each matching level."""
        old_dir, new_dir = old, new
        first = True
        while True:
            old_dir, _, old_sub = old_dir.rpartition("/")
            if old_dir not in self.removed:
                break
            new_dir, _, new_sub = new_dir.rpartition("/")
            if not first and old_sub != new_sub:
                break
            flag = self.removed.get(old_dir, _Rel.NOT_RELEVANT)
            if flag == _Rel.FOR_SELF or first:
                self.out.counts.setdefault(old_dir, Counter())[new_dir] += 1
            first = False
            if flag == _Rel.NOT_RELEVANT or not old_dir or not new_dir:
                break

    def cleanup_counts(self) -> None:
        for d in list(self.out.counts):
            if self.removed.get(d, _Rel.NOT_RELEVANT) == _Rel.NOT_RELEVANT:
                del self.out.counts[d]
            else:
                self.out.counts[d].pop(_UNKNOWN_DIR, None)


def _parse_tree(data: bytes, oid_size: int) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    pos, end = 0, len(data)
    while pos < end:
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
        out[name] = (data[nul + 1 : nul + 1 + oid_size], int(data[pos:space], 8))
        pos = nul + 1 + oid_size
    return out


def _raw_ver(entry: tuple[bytes, int]) -> _Ver:
    return _Ver(pygit2.Oid(raw=entry[0]), entry[1])


def _strhash(text: str) -> int:
    """git's strhash(): 32-bit FNV-1."""
    h = 0x811C9DC5
    for c in text.encode("utf-8", "surrogateescape"):
        h = ((h * 0x01000193) & _MASK32) ^ c
    return h


def _git_hashmap_order(keys: Sequence[str]) -> list[str]:
    """Iteration order of a git hashmap (hashmap.c) after adding keys in this order."""
    size = 64
    table: list[list[str]] = [[] for _ in range(size)]
    for count, key in enumerate(keys, start=1):
        table[_strhash(key) & (size - 1)].insert(0, key)
        if count > size * 80 // 100:
            size <<= 2
            new: list[list[str]] = [[] for _ in range(size)]
            for chain in table:
                for k in chain:
                    new[_strhash(k) & (size - 1)].insert(0, k)
            table = new
    return [k for chain in table for k in chain]


def _worse(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None) -> bool:
    """git's score_compare(a, b) > 0: empty slots sink, then score, then basename match."""
    if a is None:
        return b is not None
    if b is None:
        return False
    if a[0] == b[0]:
        return a[1] < b[1]
    return a[0] < b[0]


def _determinable(counts: Counter[str]) -> bool:
    unknown = counts.get(_UNKNOWN_DIR, 0)
    known = sorted((c for d, c in counts.items() if d != _UNKNOWN_DIR), reverse=True)
    first = known[0] if known else 0
    second = known[1] if len(known) > 1 else 0
    return first > second + unknown


# ---------------------------------------------------------------------------------------------
# Cherry-pick sequences
# ---------------------------------------------------------------------------------------------


def _parent_tree(eng: _Engine, commit: pygit2.Commit) -> pygit2.Tree:
    parents = commit.parents
    if len(parents) > 1:
        raise GitError(f"{commit.id}: is a merge commit; pick one of its parents' changes instead")
    if not parents:
        return cast(pygit2.Tree, eng.repo[eng.repo.TreeBuilder().write()])
    return parents[0].tree


def _pick(eng: _Engine, tree: pygit2.Tree, commit: pygit2.Commit) -> _Outcome:
    return _Merge(eng, _parent_tree(eng, commit), tree, commit.tree).run()


def _step_from_outcome(
    index: int, commit: pygit2.Commit | None, subject: str, tree: pygit2.Tree, out: _Outcome
) -> StepResult:
    sha = str(commit.id) if commit is not None else None
    common: dict[str, Any] = {
        "renames": tuple(out.renames),
        "binary_files": tuple(out.binary),
    }
    if out.tree is None:
        n = len(out.conflicts)
        detail = f"{n} conflict{'s' if n != 1 else ''}: " + ", ".join(
            sorted({c.path for c in out.conflicts})
        )
        return StepResult(
            index,
            sha,
            subject,
            Verdict.CONFLICT,
            None,
            conflicts=tuple(out.conflicts),
            detail=detail,
            **common,
        )
    if out.tree == tree.id:
        return StepResult(
            index,
            sha,
            subject,
            Verdict.ALREADY_PRESENT,
            str(tree.id),
            detail="the change is already in the tree (empty result)",
            **common,
        )
    return StepResult(index, sha, subject, Verdict.CLEAN, str(out.tree), **common)


def simulate_sequence(
    repo_path: str | Path,
    base: str,
    shas: Sequence[str],
    *,
    prerequisites: bool = False,
    depends_on: Mapping[str, Collection[str]] | None = None,
    in_branch: Callable[[str], bool] | None = None,
    max_candidates: int = 8,
    max_depth: int = 2,
    options: MergeOptions | None = None,
    search: SearchSession | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> SimulationResult:
    """Cherry-pick shas one after another onto base, in memory, and give each step a verdict.

    A step that conflicts is skipped (the next one starts from the last good tree), as a
    maintainer would skip a failing patch. depends_on maps a sha to earlier shas it needs: when
    one of those failed the step is "blocked" and not attempted.

    With a search session (what ``tracker check`` passes, shared by all its rounds) every
    conflict is judged: a conflict on lines that an earlier step which did not apply changes is
    BLOCKED by that step; otherwise, unless the session's mode is off, a bounded prerequisite
    search decides between CONFLICT (verified prerequisites named, or the search stopped by a
    budget) and MANUAL (no small verified set exists). prerequisites=True without a session is
    an unbounded search (no size limit, no time budget). in_branch defaults to "reachable from
    base"; steps picked earlier in this sequence always count as in. on_step sees each result
    as soon as it is known (progress display); the results are also returned.
    """
    if search is not None:
        eng = search.engine(repo_path, options or MergeOptions())
        repo = eng.repo
    else:
        repo = _open(repo_path)
        eng = _Engine(repo, options or MergeOptions())
    base_commit = _resolve_commit(repo, base)
    commits = [_resolve_commit(repo, sha) for sha in shas]
    if search is None and prerequisites:
        search = SearchSession(
            SearchLimits(
                mode=PrerequisiteMode.FULL,
                max_candidates=max_candidates,
                max_depth=max_depth,
                step_budget=0,
                run_budget=0,
            )
        )
    run = _SequenceRun(eng, base_commit, _normalise_deps(repo, depends_on or {}), search, in_branch)
    steps: list[StepResult] = []
    for index, commit in enumerate(commits):
        step = run.step(index, commit)
        if on_step is not None:
            on_step(step)
        steps.append(step)
    return SimulationResult(
        str(base_commit.id), str(base_commit.tree.id), str(run.tree.id), tuple(steps)
    )


class _SequenceRun:
    """State carried from pick to pick: the current tree and which steps did not apply."""

    def __init__(
        self,
        eng: _Engine,
        base: pygit2.Commit,
        deps: Mapping[str, set[str]],
        session: SearchSession | None,
        in_branch: Callable[[str], bool] | None,
    ) -> None:
        self.eng = eng
        self.base = base
        self.deps = deps
        self.session = session
        self.in_branch = in_branch
        self.tree = base.tree
        self.picked: set[str] = set()
        self.failed: set[str] = set()
        # Earlier steps that did not apply (sha -> index, commit) and, per path, which of them
        # change it: the cascade test looks only at those touching the conflicting files.
        self.unapplied: dict[str, tuple[int, pygit2.Commit]] = {}
        self.by_path: dict[str, list[str]] = {}

    def member(self, sha: str) -> bool:
        if sha in self.picked or sha == str(self.base.id):
            return True
        if self.in_branch is not None:
            return bool(self.in_branch(sha))
        return bool(self.eng.repo.descendant_of(self.base.id, pygit2.Oid(hex=sha)))

    def step(self, index: int, commit: pygit2.Commit) -> StepResult:
        sha = str(commit.id)
        blockers = tuple(sorted(self.deps.get(sha, set()) & self.failed))
        if blockers:
            self.fail(index, commit)
            return StepResult(
                index,
                sha,
                _subject(commit),
                Verdict.BLOCKED,
                None,
                blocked_by=blockers,
                blocked_at=tuple(self.unapplied[b][0] for b in blockers if b in self.unapplied),
                detail="depends on a step that did not apply",
            )
        started = time.perf_counter()
        outcome = _pick(self.eng, self.tree, commit)
        step = _step_from_outcome(index, commit, _subject(commit), self.tree, outcome)
        if self.session is not None:
            self.session.stats.steps += 1
            self.session.stats.simulate_seconds += time.perf_counter() - started
        if step.verdict is Verdict.CONFLICT:
            if self.session is not None:
                step = self.judge(commit, step)
            self.fail(index, commit)
        else:
            self.picked.add(sha)
            self.tree = cast(pygit2.Tree, self.eng.repo[step.tree or self.tree.id])
        return step

    def fail(self, index: int, commit: pygit2.Commit) -> None:
        sha = str(commit.id)
        self.failed.add(sha)
        if self.session is None or len(commit.parents) > 1:
            return
        self.unapplied[sha] = (index, commit)
        for path in self.eng.changes(_parent_tree(self.eng, commit), commit.tree):
            self.by_path.setdefault(path, []).append(sha)

    def judge(self, commit: pygit2.Commit, step: StepResult) -> StepResult:
        """Blocked, conflict or manual: the cascade test first, then the prerequisite search."""
        session = self.session
        assert session is not None
        step = dataclasses.replace(
            step, hunks=_hunk_texts(self.eng, self.tree, commit, step.conflicts)
        )
        blockers = _overlapping(self.eng, commit, step.conflicts, self.unapplied, self.by_path)
        if blockers:
            return self.blocked(step, blockers, "its conflict is on lines that")
        if session.limits.mode is PrerequisiteMode.OFF:
            return step
        key = (str(commit.id), self.signature(commit, step))
        found = session.cached(key)
        if found is not None and not all(b in self.unapplied for b in found.blockers):
            found = None
        started = time.perf_counter()
        try:
            search = _PrereqSearch(session, self.eng, self.member, self.base, self.unapplied)
            if found is not None and found.found and found.commits:
                # a set verified on another tree (an earlier round) must apply on this one too
                again = [cast(pygit2.Commit, self.eng.repo[c]) for c in found.commits]
                if not search.applies(self.tree, [*again, commit]):
                    found = None
            if found is None:
                session.stats.searches += 1
                found = search.result(self.tree, commit, step.conflicts)
                session.remember(key, found)
        finally:
            session.stats.search_seconds += time.perf_counter() - started
        step = dataclasses.replace(step, prerequisites=found)
        if found.blockers:
            return self.blocked(step, found.blockers, "blame says the conflicting lines of")
        if found.found or found.stopped:
            return step
        return dataclasses.replace(
            step, verdict=Verdict.MANUAL, detail=f"manual backport needed: {step.detail}"
        )

    def signature(self, commit: pygit2.Commit, step: StepResult) -> str:
        """What a search's outcome depends on in the current tree: the versions of the files
        the step changes or conflicts in. The re-plan rounds change the tree elsewhere (they
        insert prerequisites of other steps), and a step whose files did not change keeps its
        answer instead of being searched again; a set it named is verified again, and the
        steps it was blocked by must still be unapplied. (A blamed commit that an earlier step
        applied or failed to apply differently would have changed these files.)"""
        paths = set(self.eng.changes(_parent_tree(self.eng, commit), commit.tree))
        paths.update(c.path for c in step.conflicts)
        h = hashlib.sha1(usedforsecurity=False)
        for p in sorted(paths):
            ver = _Engine.at(self.tree, p)
            h.update(f"{p}\0{ver.oid if ver is not None else '-'}\0".encode(errors="replace"))
        return h.hexdigest()

    def blocked(self, step: StepResult, shas: Sequence[str], why: str) -> StepResult:
        at = tuple(self.unapplied[s][0] for s in shas)
        names = ", ".join(f"step {i + 1} ({s[:12]})" for i, s in zip(at, shas, strict=True))
        return dataclasses.replace(
            step,
            verdict=Verdict.BLOCKED,
            blocked_by=tuple(shas),
            blocked_at=at,
            detail=f"blocked by {names}: {why} that step changes, and it did not apply",
        )


def _normalise_deps(
    repo: pygit2.Repository, deps: Mapping[str, Collection[str]]
) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key, needed in deps.items():
        out[str(_resolve_commit(repo, key).id)] = {str(_resolve_commit(repo, n).id) for n in needed}
    return out


# ---------------------------------------------------------------------------------------------
# Cascades and conflict texts
# ---------------------------------------------------------------------------------------------

Span = tuple[int, int]  # 1-based inclusive line span

# What a FAILED-patch reader needs of each hunk, no more: a few lines of bounded width.
_TEXT_LINES = 6
_TEXT_WIDTH = 100
_TEXT_HUNKS = 12


def _region(span: LineRange) -> Span:
    """The lines a change collides with: its own and the one on either side (xdiff merges
    changes that touch or abut)."""
    if span.count:
        return span.start - 1, span.start + span.count
    return span.start - 1, span.start


def _change_spans(eng: _Engine, old: pygit2.Oid, new: pygit2.Oid) -> list[Span]:
    """Lines of new that the change old -> new wrote; a pure deletion marks its two neighbours."""
    return [(ns, ns + nl - 1) if nl else (ns, ns + 1) for _, _, ns, nl in eng.hunks(old, new)]


def _map_span(lo: int, hi: int, hunks: Sequence[tuple[int, int, int, int]]) -> list[Span]:
    """Where lines lo..hi of a file's old version sit in its new version (changed lines drop)."""
    out: list[Span] = []
    delta = 0
    cur = lo
    for os_, ol, _, nl in hunks:
        if cur > hi:
            break
        first_changed = os_ if ol else os_ + 1
        if cur < first_changed:
            end = min(hi, first_changed - 1)
            out.append((cur + delta, end + delta))
            cur = end + 1
        if ol:
            cur = max(cur, os_ + ol)
        delta += nl - ol
    if cur <= hi:
        out.append((cur + delta, hi + delta))
    return out


def _overlapping(
    eng: _Engine,
    fix: pygit2.Commit,
    conflicts: Sequence[FileConflict],
    unapplied: Mapping[str, tuple[int, pygit2.Commit]],
    by_path: Mapping[str, Sequence[str]],
) -> tuple[str, ...]:
    """Earlier unapplied steps that wrote lines the conflicts touch, as the fix's parent has them.

    Cheap and blame-free: the lines step E wrote (diff of E's parent to E) are carried into the
    fix's parent through one blob diff; what survives unchanged and meets a conflicting hunk
    makes the conflict E's doing. A step that creates a file the branch lacks blocks every
    conflict in that file.
    """
    if len(fix.parents) != 1 or not unapplied:
        return ()
    parent = fix.parents[0].tree
    found: list[str] = []
    for c in conflicts:
        path = c.base_path or c.path
        names = {*by_path.get(path, ()), *by_path.get(c.path, ())}
        if not names:
            continue
        p_ver = _Engine.at(parent, path)
        regions = [_region(h.base) for h in c.hunks]
        for sha in sorted(names, key=lambda s: unapplied[s][0]):
            if sha not in found and _wrote_lines(eng, unapplied[sha][1], path, p_ver, regions, c):
                found.append(sha)
    return tuple(found)


def _wrote_lines(
    eng: _Engine,
    step: pygit2.Commit,
    path: str,
    p_ver: _Ver | None,
    regions: Sequence[Span],
    conflict: FileConflict,
) -> bool:
    before = _Engine.at(_parent_tree(eng, step), path)
    after = _Engine.at(step.tree, path)
    if after is None:
        return False
    if before is None and conflict.kind is ConflictKind.MISSING_FILE:
        return True
    if p_ver is None or not (_is_reg(after.mode) and _is_reg(p_ver.mode)) or not regions:
        return False
    written = _change_spans(eng, before.oid if before is not None else eng.empty_blob(), after.oid)
    if after.oid != p_ver.oid and not _may_meet(eng, after.oid, written, p_ver.oid, regions):
        # A line the step wrote that reaches the fix's parent unchanged has the same text
        # there: when no such text is in the regions, the (full-file) diff cannot find one.
        return False
    if after.oid != p_ver.oid:
        moves = eng.hunks(after.oid, p_ver.oid)
        written = [m for lo, hi in written for m in _map_span(lo, hi, moves)]
    return any(lo <= r_hi and r_lo <= hi for lo, hi in written for r_lo, r_hi in regions)


def _may_meet(
    eng: _Engine,
    written_in: pygit2.Oid,
    written: Sequence[Span],
    target: pygit2.Oid,
    regions: Sequence[Span],
) -> bool:
    """Could any of the lines ``written`` (of blob written_in) sit unchanged in the regions of
    blob target? A necessary condition only: some line of the regions has the text of one."""
    have, lines = _numbered(eng.data(written_in)), _numbered(eng.data(target))
    texts = {ln for lo, hi in written for ln in have[max(0, lo) : max(0, hi + 1)]}
    return any(ln in texts for lo, hi in regions for ln in lines[max(0, lo) : max(0, hi + 1)])


def _numbered(data: bytes) -> list[bytes]:
    """Line k of data at index k; line 0 and the two past the end (where a change at either
    end of a file is placed) read as one token that no real line has."""
    lines = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        lines.pop()
    return [b"\n", *lines, b"\n", b"\n"]


def _text_lines(eng: _Engine, ver: _Ver | None) -> list[bytes] | None:
    if ver is None or not _is_reg(ver.mode) or eng.is_binary(ver.oid):
        return None
    return eng.data(ver.oid).split(b"\n")


def _cut(lines: list[bytes] | None, span: LineRange | None) -> tuple[tuple[str, ...], int]:
    if lines is None or span is None or not span.count:
        return (), 0
    chosen = lines[span.start - 1 : span.start - 1 + span.count]
    out = []
    for raw in chosen[:_TEXT_LINES]:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        out.append(text if len(text) <= _TEXT_WIDTH else text[: _TEXT_WIDTH - 3] + "...")
    return tuple(out), max(0, len(chosen) - _TEXT_LINES)


def _hunk_texts(
    eng: _Engine, tree: pygit2.Tree, fix: pygit2.Commit, conflicts: Sequence[FileConflict]
) -> tuple[HunkText, ...]:
    """Each conflicting hunk with the lines the patch expects and the lines the branch has."""
    if len(fix.parents) > 1:
        return ()
    parent = _parent_tree(eng, fix)
    out: list[HunkText] = []
    for c in conflicts:
        if not c.hunks:
            continue
        expects = _text_lines(eng, _Engine.at(parent, c.base_path or c.path))
        has = _text_lines(eng, _Engine.at(tree, c.path))
        for h in c.hunks:
            if len(out) >= _TEXT_HUNKS:
                return tuple(out)
            e, e_more = _cut(expects, h.base)
            o, o_more = _cut(has, h.ours)
            out.append(HunkText(c.path, h.base, h.ours, e, o, e_more, o_more))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Prerequisite discovery
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchLimits:
    """How far the prerequisite search may go.

    bounded: a proposed set has at most max_commits commits, each changing at most max_lines
    lines (added + deleted); full: up to max_candidates commits of any size. Both blame only
    the conflicting lines the branch lacks, follow a candidate's own conflict max_depth deep,
    and stop at step_budget seconds per conflicting step and run_budget seconds of search per
    run (0: no limit); a stopped search leaves the step a plain conflict.
    """

    mode: PrerequisiteMode = PrerequisiteMode.BOUNDED
    max_commits: int = 3
    max_lines: int = 200
    step_budget: float = 5.0
    run_budget: float = 120.0
    max_candidates: int = 8
    max_depth: int = 2


@dataclass
class SearchStats:
    """Where a run's time went: picking steps, searching, and blame inside the search."""

    steps: int = 0
    simulate_seconds: float = 0.0
    searches: int = 0
    search_seconds: float = 0.0
    blame_calls: int = 0
    blame_seconds: float = 0.0
    search_picks: int = 0
    stopped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            k: round(v, 3) if isinstance(v, float) else v
            for k, v in dataclasses.asdict(self).items()
        }


# (git dir, path, newest sha, oldest sha or None, first line, last line) -> hunks of (first
# line, count, commit, path in that commit, first line there); may raise GitError
BlameFn = Callable[[str, str, str, str | None, int, int], list[tuple[int, int, str, str, int]]]

_BLAME_CACHE_PATHS = 2048
_RESULT_CACHE = 4096


class SearchSession:
    """What one ``tracker check`` run shares across its rounds: limits, budgets, caches, figures.

    Blame answers are cached per (path, fix's parent, branch base): consecutive patches of one
    series, the re-plan rounds and the searches of candidates' own conflicts ask about the same
    files of the same parents again and again, and a later parent reuses an earlier one's
    answer (see :meth:`blame`). Every libgit2 blame goes through :meth:`_blame_call`, which
    counts it.
    """

    def __init__(self, limits: SearchLimits | None = None, *, blame: BlameFn | None = None) -> None:
        self.limits = limits or SearchLimits()
        self.stats = SearchStats()
        self.blame_fn = blame
        self._blame: dict[tuple[str, str, str], dict[int, str]] = {}
        self._anchors: dict[tuple[str, str], list[pygit2.Commit]] = {}
        self._sizes: dict[str, int] = {}
        self._results: dict[tuple[str, str], PrerequisiteResult] = {}
        self._bases: dict[tuple[pygit2.Oid, pygit2.Oid], pygit2.Oid | None] = {}
        self._engines: dict[tuple[str, MergeOptions], _Engine] = {}

    def engine(self, repo_path: str | Path, options: MergeOptions) -> _Engine:
        """One engine per repository for the whole run: its merge, diff and blob caches serve
        every round (a re-plan round merges most steps' files exactly as the round before)."""
        key = (str(repo_path), options)
        eng = self._engines.get(key)
        if eng is None:
            eng = self._engines[key] = _Engine(_open(repo_path), options)
        return eng

    def run_left(self) -> float | None:
        if self.limits.run_budget <= 0:
            return None
        return self.limits.run_budget - self.stats.search_seconds

    def cached(self, key: tuple[str, str]) -> PrerequisiteResult | None:
        return self._results.get(key)

    def remember(self, key: tuple[str, str], result: PrerequisiteResult) -> None:
        if result.stopped:
            return  # a later round may have budget left
        if len(self._results) >= _RESULT_CACHE:
            self._results.clear()
        self._results[key] = result

    def blame(
        self,
        repo: pygit2.Repository,
        path: str,
        parent: pygit2.Commit,
        boundary: pygit2.Oid | None,
        lo: int,
        hi: int,
    ) -> dict[int, str]:
        """Line -> commit that last changed it (between boundary and parent), lines lo..hi.

        A plan's fixes come in mainline order, so the parent of a later fix descends from the
        parent of an earlier one that conflicted in the same file. Blame then walks only from
        the new parent back to that anchor (a few commits instead of the whole range since
        the branch's base) and takes the lines the anchor still has from the anchor's own,
        cached answer, asking it (recursively, the same way) for lines it lacks.
        """
        bkey = str(boundary) if boundary is not None else ""
        key = (path, str(parent.id), bkey)
        known = self._blame.get(key)
        if known is None:
            if len(self._blame) >= _BLAME_CACHE_PATHS:
                self._blame.clear()
                self._anchors.clear()
            known = self._blame[key] = {}
            self._anchors.setdefault((path, bkey), []).append(parent)
        missing = [k for k in range(lo, hi + 1) if k not in known]
        if missing:
            anchor = self._anchor(repo, path, bkey, parent)
            oldest = anchor.id if anchor is not None else boundary
            pending: dict[str, dict[int, int]] = {}
            for start, count, sha, orig_path, orig_start in self._blame_call(
                repo, path, parent, oldest, missing[0], missing[-1]
            ):
                for off in range(count):
                    if anchor is not None and sha == str(anchor.id):
                        pending.setdefault(orig_path, {})[start + off] = orig_start + off
                    else:
                        known[start + off] = sha
            for orig_path, lines in pending.items():
                assert anchor is not None
                older = self.blame(
                    repo, orig_path, anchor, boundary, min(lines.values()), max(lines.values())
                )
                for k, orig in lines.items():
                    known[k] = older.get(orig, "")
            for k in missing:
                known.setdefault(k, "")
        return {k: known[k] for k in range(lo, hi + 1)}

    def _anchor(
        self, repo: pygit2.Repository, path: str, bkey: str, parent: pygit2.Commit
    ) -> pygit2.Commit | None:
        """The newest parent already blamed for this path that is an ancestor of ``parent``."""
        seen = [c for c in self._anchors.get((path, bkey), ()) if c.id != parent.id]
        seen.sort(key=lambda c: c.commit_time, reverse=True)
        for c in seen[:4]:
            if c.commit_time <= parent.commit_time and repo.descendant_of(parent.id, c.id):
                return c
        return None

    def _blame_call(
        self,
        repo: pygit2.Repository,
        path: str,
        newest: pygit2.Commit,
        oldest: pygit2.Oid | None,
        lo: int,
        hi: int,
    ) -> list[tuple[int, int, str, str, int]]:
        """The one place libgit2's blame is called: (first line, count, commit, orig path,
        orig first line) per hunk; counted and timed for the report."""
        self.stats.blame_calls += 1
        started = time.perf_counter()
        try:
            if self.blame_fn is not None:
                newest_sha = str(newest.id)
                old = str(oldest) if oldest is not None else None
                return self.blame_fn(repo.path, path, newest_sha, old, lo, hi)
            blame = repo.blame(
                path, newest_commit=newest.id, oldest_commit=oldest, min_line=lo, max_line=hi
            )
            return [
                (
                    bh.final_start_line_number,
                    bh.lines_in_hunk,
                    str(bh.final_commit_id),
                    bh.orig_path or path,
                    bh.orig_start_line_number,
                )
                for bh in blame
            ]
        except (pygit2.GitError, KeyError, ValueError, GitError):
            return []
        finally:
            self.stats.blame_seconds += time.perf_counter() - started

    def merge_base(
        self, repo: pygit2.Repository, a: pygit2.Oid, b: pygit2.Oid
    ) -> pygit2.Oid | None:
        """Cached: the search of a step, of its candidates' own conflicts and of the next
        round ask for the same parents again."""
        key = (a, b)
        if key not in self._bases:
            if len(self._bases) >= _RESULT_CACHE:
                self._bases.clear()
            try:
                self._bases[key] = repo.merge_base(a, b)
            except pygit2.GitError:
                self._bases[key] = None
        return self._bases[key]

    def changed_lines(self, eng: _Engine, commit: pygit2.Commit) -> int:
        """Lines the commit adds and deletes, as libgit2 counts them (binary files: none).

        File by file, on the files the commit changes: a whole-tree diff with stats costs
        ten times more (about 0.1 s a commit of a kernel-sized tree) for the same figure."""
        sha = str(commit.id)
        n = self._sizes.get(sha)
        if n is None:
            if len(commit.parents) != 1:
                n = 1 << 30  # a merge is never a prerequisite one would pick
            else:
                n = 0
                for old, new in eng.changes(commit.parents[0].tree, commit.tree).values():
                    a = _blob_of(eng, old)
                    b = _blob_of(eng, new)
                    if a is None and b is None:
                        continue
                    _context, added, deleted = pygit2.Patch.create_from(a, b).line_stats
                    n += added + deleted
            self._sizes[sha] = n
        return n


def find_prerequisites(
    repo_path: str | Path,
    base: str,
    fix_sha: str,
    *,
    in_branch: Callable[[str], bool],
    max_candidates: int = 8,
    max_depth: int = 2,
    options: MergeOptions | None = None,
    limits: SearchLimits | None = None,
) -> PrerequisiteResult:
    """Find the smallest set of commits that, picked first, lets fix_sha apply cleanly on base.

    Candidates are the commits that last touched the conflicting lines in the fix's parent
    (blame, only of the lines the branch lacks) and are not in the branch; sets are tried
    smallest first, in mainline order, and a set only counts once a re-simulation of set + fix
    comes out clean. Without limits the search is unbounded in size and time.
    """
    repo = _open(repo_path)
    eng = _Engine(repo, options or MergeOptions())
    base_commit = _resolve_commit(repo, base)
    fix = _resolve_commit(repo, fix_sha)
    session = SearchSession(
        limits
        or SearchLimits(
            mode=PrerequisiteMode.FULL,
            max_candidates=max_candidates,
            max_depth=max_depth,
            step_budget=0,
            run_budget=0,
        )
    )
    return _PrereqSearch(session, eng, in_branch, base_commit, {}).result(base_commit.tree, fix)


@dataclass
class _Found:
    ok: bool
    commits: list[pygit2.Commit]
    evidence: list[Evidence]


class _Stop(Exception):
    """A budget ran out; the message says which."""


Unit = tuple[list[pygit2.Commit], list[Evidence]]


class _PrereqSearch:
    """Blame the conflicting lines the branch lacks, then try candidate sets smallest first."""

    def __init__(
        self,
        session: SearchSession,
        eng: _Engine,
        in_branch: Callable[[str], bool],
        base: pygit2.Commit,
        unapplied: Mapping[str, object],
        picks: int = 256,
    ) -> None:
        lim = session.limits
        self.session = session
        self.eng = eng
        self.in_branch = in_branch
        self.base = base
        self.unapplied = unapplied
        self.bounded = lim.mode is PrerequisiteMode.BOUNDED
        self.max_candidates = max(1, lim.max_candidates)
        self.max_commits = max(1, lim.max_commits if self.bounded else lim.max_candidates)
        self.max_depth = max(1, lim.max_depth)
        self.picks = picks
        self.tried: list[tuple[str, ...]] = []
        self.candidates: list[str] = []
        self.rejected: list[str] = []
        self.blockers: dict[str, list[Evidence]] = {}
        self._member: dict[str, bool] = {}
        # (start tree, commits picked in order) -> resulting tree, None when the last conflicted
        self._after: dict[tuple[pygit2.Oid, tuple[pygit2.Oid, ...]], pygit2.Oid | None] = {}
        self.deadline: tuple[float, str] | None = None

    # --- budgets --------------------------------------------------------------------------

    def start_clock(self) -> None:
        lim = self.session.limits
        now = time.perf_counter()
        ends: list[tuple[float, str]] = []
        if lim.step_budget > 0:
            ends.append((now + lim.step_budget, f"the step's {lim.step_budget:g} s budget ran out"))
        left = self.session.run_left()
        if left is not None:
            ends.append((now + left, f"the run's {lim.run_budget:g} s search budget ran out"))
        self.deadline = min(ends) if ends else None

    def tick(self) -> None:
        if self.deadline is not None and time.perf_counter() >= self.deadline[0]:
            raise _Stop(self.deadline[1])
        if self.picks <= 0:
            raise _Stop("the search tried as many picks as it may (256)")

    def pick(self, tree: pygit2.Tree, commit: pygit2.Commit) -> _Outcome:
        self.tick()
        self.picks -= 1
        self.session.stats.search_picks += 1
        return _pick(self.eng, tree, commit)

    # --- driver ---------------------------------------------------------------------------

    def result(
        self,
        tree: pygit2.Tree,
        fix: pygit2.Commit,
        conflicts: Sequence[FileConflict] | None = None,
    ) -> PrerequisiteResult:
        stopped = ""
        found = _Found(False, [], [])
        self.start_clock()
        try:
            found = self.search(tree, fix, self.max_depth, self.max_commits, conflicts, top=True)
        except _Stop as stop:
            stopped = str(stop)
            self.session.stats.stopped += 1
        sha = str(fix.id)
        blockers = tuple(self.blockers) if not found.ok and not stopped else ()
        evidence = found.evidence
        if blockers:
            evidence = [e for b in blockers for e in self.blockers[b]]
        return PrerequisiteResult(
            sha,
            found.ok and not blockers,
            tuple(str(c.id) for c in found.commits),
            tuple(evidence),
            tuple(self.tried),
            tuple(self.candidates),
            self.message(found, stopped, blockers),
            mode=self.session.limits.mode.value,
            stopped=stopped,
            blockers=blockers,
            rejected=tuple(self.rejected),
        )

    def message(self, found: _Found, stopped: str, blockers: Sequence[str]) -> str:
        if stopped:
            return f"search stopped before a verdict: {stopped}"
        if blockers:
            names = ", ".join(b[:12] for b in blockers)
            return f"the conflicting lines were last changed by earlier unapplied steps: {names}"
        if found.ok and not found.commits:
            return "applies without prerequisites"
        if found.ok:
            names = ", ".join(_short(c) for c in found.commits)
            return f"applies cleanly after {names} (verified by re-simulation)"
        size = (
            f"at most {self.max_commits} commit(s) of at most {self.session.limits.max_lines} "
            "changed lines each"
            if self.bounded
            else f"up to {self.max_commits} commits (depth {self.max_depth})"
        )
        too_big = f"; too big: {'; '.join(self.rejected)}" if self.rejected else ""
        if not self.candidates:
            return "no candidate commits outside the branch touched the conflicting lines" + (
                f" ({size}){too_big}" if too_big else ""
            )
        return f"no set of {size} makes it apply; tried {len(self.tried)} sets{too_big}"

    def is_in_branch(self, sha: str) -> bool:
        known = self._member.get(sha)
        if known is None:
            known = bool(self.in_branch(sha))
            self._member[sha] = known
        return known

    def search(
        self,
        tree: pygit2.Tree,
        fix: pygit2.Commit,
        depth: int,
        room: int,
        conflicts: Sequence[FileConflict] | None = None,
        *,
        top: bool = False,
    ) -> _Found:
        """The smallest verified set of at most ``room`` commits that lets fix apply on tree.

        A candidate's own prerequisites count against the room of the set it would join: a
        set over max_commits can never be proposed, so it is never tried (nor searched for).
        """
        if conflicts is None:
            first = self.pick(tree, fix)
            if first.tree is not None:
                return _Found(True, [], [])
            conflicts = first.conflicts
        blamed = self.blame(tree, fix, conflicts, top)
        if top and self.blockers:
            return _Found(False, [], [])
        units: list[Unit] = []
        for cand, evidence in blamed:
            unit = self.unit(tree, cand, evidence, depth, room)
            if unit is not None:
                units.append(unit)
        for size in range(1, len(units) + 1):
            for combo in itertools.combinations(units, size):
                if len({c.id for u in combo for c in u[0]}) > room:
                    continue
                found = self.try_set(tree, fix, combo)
                if found is not None:
                    return self.minimal(tree, fix, found)
        return _Found(False, [], [])

    def unit(
        self,
        tree: pygit2.Tree,
        cand: pygit2.Commit,
        evidence: list[Evidence],
        depth: int,
        room: int,
    ) -> Unit | None:
        alone = self.pick(tree, cand)
        self._after[(tree.id, (cand.id,))] = alone.tree
        if alone.tree is not None:
            return None if alone.tree == tree.id else ([cand], evidence)
        if depth <= 1 or room <= 1:
            return None  # no room left for what the candidate itself would need
        sub = self.search(tree, cand, depth - 1, room - 1, alone.conflicts)
        if not sub.ok:
            return None
        needed = [
            dataclasses.replace(e, text=f"{e.text}; needed by {_short(cand)}") for e in sub.evidence
        ]
        return [*sub.commits, cand], needed + evidence

    def applies(self, tree: pygit2.Tree, commits: Sequence[pygit2.Commit]) -> bool:
        """Do commits apply one after another onto tree? Every search starts from the same
        tree, so the trees of prefixes already picked (a candidate alone, a tried set) are
        kept and not picked again."""
        ids = tuple(c.id for c in commits)
        start = next((k for k in range(len(ids), 0, -1) if (tree.id, ids[:k]) in self._after), 0)
        if start:
            after = self._after[(tree.id, ids[:start])]
            if after is None:
                return False
            current = cast(pygit2.Tree, self.eng.repo[after])
        else:
            current = tree
        for k in range(start, len(ids)):
            out = self.pick(current, commits[k])
            self._after[(tree.id, ids[: k + 1])] = out.tree
            if out.tree is None:
                return False
            current = cast(pygit2.Tree, self.eng.repo[out.tree])
        return True

    def try_set(
        self, tree: pygit2.Tree, fix: pygit2.Commit, combo: Sequence[Unit]
    ) -> _Found | None:
        commits: dict[str, pygit2.Commit] = {}
        evidence: list[Evidence] = []
        for unit_commits, unit_evidence in combo:
            for c in unit_commits:
                commits[str(c.id)] = c
            evidence.extend(unit_evidence)
        ordered = sorted(commits.values(), key=_mainline_key)
        self.tried.append(tuple(str(c.id) for c in ordered))
        if not self.applies(tree, [*ordered, fix]):
            return None
        unique = list({(e.commit, e.text): e for e in evidence}.values())
        return _Found(True, ordered, unique)

    def minimal(self, tree: pygit2.Tree, fix: pygit2.Commit, found: _Found) -> _Found:
        """Drop every member the fix turns out not to need (sets are tried smallest first, but a
        chained unit can carry a commit that a later member made unnecessary)."""
        commits = list(found.commits)
        for c in list(commits):
            if len(commits) == 1:
                break
            rest = [x for x in commits if x.id != c.id]
            if self.applies(tree, [*rest, fix]):
                commits = rest
        kept = {str(c.id) for c in commits}
        return _Found(True, commits, [e for e in found.evidence if e.commit in kept])

    # --- blame ----------------------------------------------------------------------------

    def blame(
        self, tree: pygit2.Tree, fix: pygit2.Commit, conflicts: Sequence[FileConflict], top: bool
    ) -> list[tuple[pygit2.Commit, list[Evidence]]]:
        """Commits outside the branch that last changed the conflicting lines, mainline order."""
        if len(fix.parents) != 1:
            return []
        parent = fix.parents[0]
        repo = self.eng.repo
        boundary = self.session.merge_base(repo, self.base.id, parent.id)
        lines: Counter[str] = Counter()
        evidence: dict[str, list[Evidence]] = {}
        skip = {str(fix.id), str(boundary) if boundary is not None else ""}
        for conflict in conflicts:
            path = conflict.base_path or conflict.path
            for lo, hi in self.targets(tree, conflict, parent.tree, path):
                self.tick()
                owners = self.session.blame(repo, path, parent, boundary, lo, hi)
                for sha, start, count in _runs(owners):
                    if sha in skip:
                        continue
                    self.attribute(sha, path, start, count, top, lines, evidence)
        chosen = [sha for sha, _ in lines.most_common(self.max_candidates)]
        commits = sorted((cast(pygit2.Commit, repo[sha]) for sha in chosen), key=_mainline_key)
        for c in commits:
            if str(c.id) not in self.candidates:
                self.candidates.append(str(c.id))
        return [(c, evidence[str(c.id)]) for c in commits]

    def attribute(
        self,
        sha: str,
        path: str,
        start: int,
        count: int,
        top: bool,
        lines: Counter[str],
        evidence: dict[str, list[Evidence]],
    ) -> None:
        commit = cast(pygit2.Commit, self.eng.repo[sha])
        text = (
            f"lines {start}-{start + count - 1} of {path} last changed by "
            f'{_short(commit)} ("{_subject(commit)}")'
        )
        ev = Evidence(sha, _subject(commit), path, LineRange(start, count), text)
        if sha in self.unapplied:
            # an earlier step of the sequence that did not apply: the conflict is its cascade
            if top:
                self.blockers.setdefault(sha, []).append(ev)
            return
        if self.is_in_branch(sha):
            return
        if self.bounded:
            size = self.session.changed_lines(self.eng, commit)
            if size > self.session.limits.max_lines:
                note = f"{_short(commit)} changes {size} lines"
                if note not in self.rejected:
                    self.rejected.append(note)
                return
        lines[sha] += count
        evidence.setdefault(sha, []).append(ev)

    def targets(
        self, tree: pygit2.Tree, conflict: FileConflict, parent: pygit2.Tree, path: str
    ) -> list[Span]:
        """The lines of the conflicting hunks (in the fix's parent) that the branch lacks.

        Lines the branch's tree already has came from commits the branch has (or from the
        common base): blaming them can only name commits that are not missing. What the branch
        lacks is found with one blob diff of the branch's file against the parent's.
        """
        p_ver = _Engine.at(parent, path)
        if p_ver is None or not _is_reg(p_ver.mode) or not conflict.hunks:
            return []
        total = _line_count(self.eng, parent, path)
        if total == 0:
            return []
        o_ver = _Engine.at(tree, conflict.path)
        if o_ver is None or not _is_reg(o_ver.mode):
            lacking: list[Span] = [(1, total)]
        else:
            lacking = _change_spans(self.eng, o_ver.oid, p_ver.oid)
        out: list[Span] = []
        for h in conflict.hunks:
            r_lo, r_hi = _region(h.base)
            r_lo, r_hi = max(1, r_lo), min(total, r_hi)
            for a, b in lacking:
                lo, hi = max(r_lo, a), min(r_hi, b, total)
                if lo <= hi:
                    out.append((lo, hi))
        return _merge_spans(out)


def _merge_spans(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _runs(owners: Mapping[int, str]) -> Iterable[tuple[str, int, int]]:
    """(sha, first line, count) for each run of consecutive lines with the same owner."""
    run: tuple[str, int, int] | None = None
    for k in sorted(owners):
        sha = owners[k]
        if run is not None and run[0] == sha and run[1] + run[2] == k:
            run = (sha, run[1], run[2] + 1)
            continue
        if run is not None and run[0]:
            yield run
        run = (sha, k, 1)
    if run is not None and run[0]:
        yield run


def _short(commit: pygit2.Commit) -> str:
    return str(commit.id)[:12]


def _mainline_key(commit: pygit2.Commit) -> tuple[int, int, str]:
    return (commit.commit_time, commit.author.time, str(commit.id))


def _line_count(eng: _Engine, tree: pygit2.Tree, path: str) -> int:
    ver = _Engine.at(tree, path)
    if ver is None or not _is_reg(ver.mode):
        return 0
    data = eng.data(ver.oid)
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


# ---------------------------------------------------------------------------------------------
# Mail patches
# ---------------------------------------------------------------------------------------------

_HUNK_RE = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_INDEX_RE = re.compile(rb"^index ([0-9a-f]+)\.\.([0-9a-f]+)(?: ([0-7]+))?")
_SUBJECT_RE = re.compile(r"^Subject:\s*(?:\[[^\]]*\]\s*)*(.*)$", re.MULTILINE)


@dataclass
class _Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    pre: list[bytes] = field(default_factory=list)
    post: list[bytes] = field(default_factory=list)
    trailing: int = 0


@dataclass
class _FilePatch:
    old_path: str | None = None
    new_path: str | None = None
    old_mode: int | None = None
    new_mode: int | None = None
    old_index: str | None = None
    new_index: str | None = None
    index_mode: int | None = None
    is_new: bool = False
    is_delete: bool = False
    is_rename: bool = False
    is_copy: bool = False
    binary: bool = False
    binary_blocks: list[tuple[str, int, bytes]] = field(default_factory=list)
    hunks: list[_Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or "?"


class _PatchError(ValueError):
    """A diff that cannot be parsed or applied (reported as a conflict, never raised)."""


def _strip_path(raw: bytes, strip_prefix: bool = True) -> str | None:
    text = raw.split(b"\t", 1)[0].rstrip(b"\r\n").decode("utf-8", "surrogateescape")
    if text.startswith('"') and text.endswith('"'):
        text = text[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    if text == "/dev/null":
        return None
    if strip_prefix and "/" in text:
        text = text.split("/", 1)[1]
    return text


def _parse_patch(diff: bytes) -> list[_FilePatch]:
    lines = diff.splitlines(keepends=True)
    patches: list[_FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"diff --git "):
            fp = _FilePatch()
            i = _parse_git_header(lines, i + 1, fp, line)
        elif line.startswith(b"--- ") and i + 1 < len(lines) and lines[i + 1].startswith(b"+++ "):
            fp = _FilePatch(old_path=_strip_path(line[4:]), new_path=_strip_path(lines[i + 1][4:]))
            fp.is_new = fp.old_path is None
            fp.is_delete = fp.new_path is None
            i += 2
        else:
            i += 1
            continue
        i = _parse_hunks(lines, i, fp)
        patches.append(fp)
    return patches


def _git_header_paths(line: bytes) -> tuple[str | None, str | None]:
    rest = line[len(b"diff --git ") :].rstrip(b"\r\n")
    if rest.startswith(b"a/"):
        # the two names are equal unless renamed; split where both halves match
        for k in range(len(rest)):
            if rest[k : k + 3] == b" b/" and rest[2:k] == rest[k + 3 :]:
                return _strip_path(rest[:k]), _strip_path(rest[k + 1 :])
        k = rest.find(b" b/")
        if k > 0:
            return _strip_path(rest[:k]), _strip_path(rest[k + 1 :])
    return None, None


def _parse_git_header(lines: list[bytes], i: int, fp: _FilePatch, first: bytes) -> int:
    fp.old_path, fp.new_path = _git_header_paths(first)
    while i < len(lines):
        line = lines[i]
        if line.startswith((b"@@ ", b"diff --git ")):
            return i
        if line.startswith(b"--- "):
            fp.old_path = _strip_path(line[4:]) if not line[4:].startswith(b"/dev/null") else None
        elif line.startswith(b"+++ "):
            fp.new_path = _strip_path(line[4:]) if not line[4:].startswith(b"/dev/null") else None
        elif line.startswith(b"GIT binary patch"):
            fp.binary = True
            return _parse_binary(lines, i + 1, fp)
        elif line.startswith(b"Binary files "):
            fp.binary = True
        else:
            _parse_extended(line, fp)
        i += 1
    return i


def _parse_extended(line: bytes, fp: _FilePatch) -> None:
    text = line.rstrip(b"\r\n")
    word = text.rsplit(b" ", 1)
    if text.startswith(b"new file mode "):
        fp.is_new, fp.new_mode, fp.old_path = True, int(word[-1], 8), None
    elif text.startswith(b"deleted file mode "):
        fp.is_delete, fp.old_mode, fp.new_path = True, int(word[-1], 8), None
    elif text.startswith(b"old mode "):
        fp.old_mode = int(word[-1], 8)
    elif text.startswith(b"new mode "):
        fp.new_mode = int(word[-1], 8)
    elif text.startswith((b"rename from ", b"copy from ")):
        fp.old_path = _strip_path(text.split(b" ", 2)[2], strip_prefix=False)
        fp.is_rename = text.startswith(b"rename")
        fp.is_copy = not fp.is_rename
    elif text.startswith((b"rename to ", b"copy to ")):
        fp.new_path = _strip_path(text.split(b" ", 2)[2], strip_prefix=False)
    else:
        m = _INDEX_RE.match(text)
        if m:
            fp.old_index = m.group(1).decode()
            fp.new_index = m.group(2).decode()
            fp.index_mode = int(m.group(3), 8) if m.group(3) else None


def _parse_binary(lines: list[bytes], i: int, fp: _FilePatch) -> int:
    while i < len(lines):
        head = lines[i].strip().split(b" ")
        if len(head) != 2 or head[0] not in (b"literal", b"delta"):
            return i
        i += 1
        chunk: list[bytes] = []
        while i < len(lines) and lines[i].strip():
            chunk.append(lines[i].strip())
            i += 1
        fp.binary_blocks.append(
            (head[0].decode(), int(head[1]), b"".join(_b85_line(c) for c in chunk))
        )
        i += 1
    return i


def _b85_line(line: bytes) -> bytes:
    import base64

    n = line[0]
    size = n - ord("A") + 1 if n <= ord("Z") else n - ord("a") + 27
    return base64.b85decode(line[1:])[:size]


def _parse_hunks(lines: list[bytes], i: int, fp: _FilePatch) -> int:
    while i < len(lines):
        m = _HUNK_RE.match(lines[i])
        if not m:
            if lines[i].startswith(b"GIT binary patch"):
                fp.binary = True
                i = _parse_binary(lines, i + 1, fp)
                continue
            return i
        hunk = _Hunk(
            int(m.group(1)), int(m.group(2) or b"1"), int(m.group(3)), int(m.group(4) or b"1")
        )
        i = _parse_hunk_body(lines, i + 1, hunk)
        fp.hunks.append(hunk)
    return i


def _parse_hunk_body(lines: list[bytes], i: int, hunk: _Hunk) -> int:
    old_left, new_left = hunk.old_count, hunk.new_count
    last: list[list[bytes]] = []
    while i < len(lines) and (old_left > 0 or new_left > 0 or lines[i].startswith(b"\\")):
        line = lines[i]
        tag = line[:1]
        body = line[1:]
        if tag == b"\\":
            # "\ No newline at end of file" applies to the line just before it
            for target in last:
                target[-1] = target[-1].removesuffix(b"\n")
            i += 1
            continue
        if tag in (b"\n", b"\r"):
            tag, body = b" ", line
        if tag == b" ":
            hunk.pre.append(body)
            hunk.post.append(body)
            last = [hunk.pre, hunk.post]
            old_left, new_left = old_left - 1, new_left - 1
            hunk.trailing += 1
        elif tag == b"-":
            hunk.pre.append(body)
            last = [hunk.pre]
            old_left -= 1
            hunk.trailing = 0
        elif tag == b"+":
            hunk.post.append(body)
            last = [hunk.post]
            new_left -= 1
            hunk.trailing = 0
        else:
            raise _PatchError(f"malformed hunk line {line[:40]!r}")
        i += 1
    if old_left or new_left:
        raise _PatchError("truncated hunk")
    return i


def _apply_hunks(data: bytes, hunks: Sequence[_Hunk]) -> tuple[bytes | None, _Hunk | None]:
    """git apply's strict placement (no fuzz): returns (result, None) or (None, failing hunk)."""
    img = _split_lines(data)
    for hunk in hunks:
        pos = _find_pos(img, hunk)
        if pos < 0:
            return None, hunk
        img[pos : pos + len(hunk.pre)] = hunk.post
    return b"".join(img), None


def _split_lines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _find_pos(img: list[bytes], hunk: _Hunk) -> int:
    pre = hunk.pre
    if len(pre) > len(img):
        return -1
    match_beginning = hunk.old_start == 0 or hunk.old_start == 1
    match_end = hunk.trailing == 0
    if match_beginning:
        line = 0
    elif match_end:
        line = len(img) - len(pre)
    else:
        line = min(max(hunk.new_start - 1, 0), len(img))
    for cand in _probe_order(line, len(img)):
        if match_beginning and cand != 0:
            continue
        if match_end and cand + len(pre) != len(img):
            continue
        if img[cand : cand + len(pre)] == pre:
            return cand
    return -1


def _probe_order(line: int, n: int) -> Iterable[int]:
    yield line
    for step in range(1, n + 1):
        if line + step <= n:
            yield line + step
        if line - step >= 0:
            yield line - step
        if line + step > n and line - step < 0:
            return


def _apply_delta(src: bytes, delta: bytes) -> bytes:
    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = delta[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    src_size, pos = varint(0)
    dst_size, pos = varint(pos)
    if src_size != len(src):
        raise _PatchError("binary delta does not match the preimage")
    out = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:
            offset = size = 0
            for bit in range(4):
                if op & (1 << bit):
                    offset |= delta[pos] << (8 * bit)
                    pos += 1
            for bit in range(3):
                if op & (0x10 << bit):
                    size |= delta[pos] << (8 * bit)
                    pos += 1
            out += src[offset : offset + (size or 0x10000)]
        elif op:
            out += delta[pos : pos + op]
            pos += op
        else:
            raise _PatchError("corrupt binary delta")
    if len(out) != dst_size:
        raise _PatchError("binary delta has the wrong size")
    return bytes(out)


class _MailApply:
    """Apply a parsed patch to a tree, plainly or (like git am -3) through a 3-way merge."""

    def __init__(self, eng: _Engine, tree: pygit2.Tree, patches: list[_FilePatch]) -> None:
        self.eng = eng
        self.tree = tree
        self.patches = patches
        self.failures: list[FileConflict] = []

    def blob(self, abbrev: str | None) -> pygit2.Oid | None:
        if not abbrev or set(abbrev) == {"0"}:
            return None
        try:
            obj = self.eng.repo.get(abbrev)
        except (ValueError, pygit2.GitError):
            return None
        return obj.id if isinstance(obj, pygit2.Blob) else None

    def new_content(self, fp: _FilePatch, old: bytes | None) -> bytes:
        """Post-image bytes of one file, or raise _PatchError with the reason."""
        if fp.binary:
            return self.binary_content(fp, old)
        result, bad = _apply_hunks(old or b"", fp.hunks)
        if result is None:
            assert bad is not None
            self.failures.append(
                FileConflict(
                    fp.path,
                    ConflictKind.PATCH_DOES_NOT_APPLY,
                    f"{fp.path}: hunk @@ -{bad.old_start},{bad.old_count} does not apply",
                    base_path=fp.old_path,
                    hunks=(
                        ConflictHunk(
                            _range(bad.old_start, bad.old_count),
                            _range(bad.new_start, bad.new_count),
                            None,
                        ),
                    ),
                )
            )
            raise _PatchError("hunk does not apply")
        return result

    def binary_content(self, fp: _FilePatch, old: bytes | None) -> bytes:
        target = self.blob(fp.new_index)
        if target is not None:
            return self.eng.data(target)
        for kind, size, payload in fp.binary_blocks[:1]:
            raw = zlib.decompress(payload)
            if kind == "literal" and len(raw) == size:
                return raw
            if kind == "delta" and old is not None:
                return _apply_delta(old, raw)
        self.failures.append(
            FileConflict(
                fp.path,
                ConflictKind.BINARY_PATCH,
                f"{fp.path}: binary patch without usable data",
                base_path=fp.old_path,
            )
        )
        raise _PatchError("binary patch cannot be applied")

    def apply_to(self, tree: pygit2.Tree, check_new: bool) -> pygit2.Oid | None:
        updates: dict[str, _Ver | None] = {}
        for fp in self.patches:
            old = _Engine.at(tree, fp.old_path) if fp.old_path and not fp.is_new else None
            if not fp.is_new and old is None:
                self.failures.append(
                    FileConflict(
                        fp.path,
                        ConflictKind.MISSING_FILE,
                        f"{fp.old_path}: does not exist in the target tree",
                        base_path=fp.old_path,
                    )
                )
                return None
            if check_new and fp.is_new and fp.new_path and _Engine.at(tree, fp.new_path):
                self.failures.append(
                    FileConflict(fp.path, ConflictKind.ADD_ADD, f"{fp.new_path}: already exists")
                )
                return None
            try:
                self.apply_one(fp, old, updates)
            except (_PatchError, zlib.error, IndexError):
                return None
        df: list[str] = []
        oid = self.eng.build(tree, updates, "", df) if updates else tree.id
        if df:
            return None
        return oid if oid is not None else self.eng.repo.TreeBuilder().write()

    def apply_one(self, fp: _FilePatch, old: _Ver | None, updates: dict[str, _Ver | None]) -> None:
        old_data = self.eng.data(old.oid) if old is not None else None
        changes_content = bool(fp.hunks) or fp.binary
        data = self.new_content(fp, old_data) if changes_content else old_data or b""
        if fp.is_delete:
            if data:
                raise _PatchError("deletion patch leaves content behind")
            if fp.old_path:
                updates[fp.old_path] = None
            return
        mode = fp.new_mode or (old.mode if old is not None else None) or fp.index_mode or 0o100644
        assert fp.new_path is not None
        if fp.is_rename and fp.old_path and fp.old_path != fp.new_path:
            updates[fp.old_path] = None
        updates[fp.new_path] = _Ver(self.eng.repo.create_blob(data), mode)

    def preimage_tree(self) -> pygit2.Tree | None:
        """The tree git am -3 would call the base: ours with the patch's preimage blobs."""
        updates: dict[str, _Ver | None] = {}
        for fp in self.patches:
            if fp.is_new or not fp.old_path:
                continue
            oid = self.blob(fp.old_index)
            if oid is None:
                return None
            current = _Engine.at(self.tree, fp.old_path)
            mode = fp.old_mode or fp.index_mode or (current.mode if current else 0o100644)
            updates[fp.old_path] = _Ver(oid, mode)
        for fp in self.patches:
            if fp.is_new and fp.new_path:
                updates[fp.new_path] = None
        df: list[str] = []
        oid = self.eng.build(self.tree, updates, "", df) if updates else self.tree.id
        if df or oid is None:
            return None
        return cast(pygit2.Tree, self.eng.repo[oid])


def apply_mail_patch(
    repo_path: str | Path,
    tree_or_commit: str,
    diff_text: str | bytes,
    *,
    options: MergeOptions | None = None,
) -> StepResult:
    """Apply a mailed patch (git-style or quilt-style diff) to a tree or commit, in memory.

    Like git am: plain strict apply first; when that fails and the patch's "index a..b"
    preimage blobs are in the repository, a 3-way merge like git am -3.
    """
    repo = _open(repo_path)
    eng = _Engine(repo, options or MergeOptions())
    tree = _resolve_tree(repo, tree_or_commit)
    raw = diff_text.encode("utf-8", "surrogateescape") if isinstance(diff_text, str) else diff_text
    if raw and raw.count(b"\r\n") == raw.count(b"\n"):
        # a mail saved with CRLF line ends; git am (mailsplit) drops the CRs the same way
        raw = raw.replace(b"\r\n", b"\n")
    subject = _mail_subject(raw)
    try:
        patches = _parse_patch(raw)
    except (_PatchError, ValueError) as exc:
        return _mail_failure(
            subject,
            tree,
            [
                FileConflict(
                    "?", ConflictKind.PATCH_DOES_NOT_APPLY, f"cannot parse the patch: {exc}"
                )
            ],
            (),
        )
    binaries = tuple(sorted(fp.path for fp in patches if fp.binary))
    if not patches:
        return _mail_failure(
            subject,
            tree,
            [FileConflict("?", ConflictKind.PATCH_DOES_NOT_APPLY, "no diff found in the text")],
            binaries,
        )
    applier = _MailApply(eng, tree, patches)
    plain = applier.apply_to(tree, check_new=True)
    if plain is not None:
        out = _Outcome(plain, [], [], list(binaries))
        return dataclasses.replace(
            _step_from_outcome(0, None, subject, tree, out),
            detail="applied without a 3-way merge"
            if plain != tree.id
            else "the change is already in the tree",
        )
    return _mail_threeway(eng, tree, applier, subject, binaries)


def _mail_threeway(
    eng: _Engine, tree: pygit2.Tree, applier: _MailApply, subject: str, binaries: tuple[str, ...]
) -> StepResult:
    base = applier.preimage_tree()
    if base is None:
        return _mail_failure(subject, tree, applier.failures, binaries)
    first_failures = list(applier.failures)
    applier.failures = []
    theirs_oid = applier.apply_to(base, check_new=False)
    if theirs_oid is None:
        return _mail_failure(subject, tree, first_failures + applier.failures, binaries)
    theirs = cast(pygit2.Tree, eng.repo[theirs_oid])
    out = _Merge(eng, base, tree, theirs).run()
    out.binary = sorted(set(out.binary) | set(binaries))
    step = _step_from_outcome(0, None, subject, tree, out)
    return dataclasses.replace(
        step, detail=f"3-way merge with the preimage blobs; {step.detail}".rstrip("; ")
    )


def _mail_failure(
    subject: str, tree: pygit2.Tree, failures: Sequence[FileConflict], binaries: tuple[str, ...]
) -> StepResult:
    conflicts = tuple(failures) or (
        FileConflict("?", ConflictKind.PATCH_DOES_NOT_APPLY, "patch does not apply"),
    )
    return StepResult(
        0,
        None,
        subject,
        Verdict.CONFLICT,
        None,
        conflicts=conflicts,
        binary_files=binaries,
        detail="patch does not apply and no 3-way fallback is possible",
    )


def _mail_subject(raw: bytes) -> str:
    head = raw.split(b"\ndiff --git ", 1)[0].decode("utf-8", "replace")
    m = _SUBJECT_RE.search(head)
    return m.group(1).strip() if m else ""


def _resolve_tree(repo: pygit2.Repository, rev: str) -> pygit2.Tree:
    _check_rev(rev)
    if _HEX_RE.fullmatch(rev):
        try:
            obj = repo.get(rev)
        except (ValueError, pygit2.GitError):
            obj = None
        if isinstance(obj, pygit2.Tree):
            return obj
    return _resolve_commit(repo, rev).tree
