"""The merge engine: one repository and the caches every merge of a simulation run shares
(blobs, parsed trees, similarity spans, content merges, diffs), and tree rebuilding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import cast

import pygit2
from pygit2.enums import DiffOption

from tracker.simulate import contentmerge
from tracker.simulate.objects import (
    _BINARY_PROBE,
    _MAX_SCORE,
    _MODE_TREE,
    Changes,
    _is_blob,
    _is_reg,
    _parse_tree,
    _raw_ver,
    _Ver,
)
from tracker.simulate.results import MergeOptions
from tracker.simulate.similarity import _span_counts

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
            tuple[pygit2.Oid | None, tuple[contentmerge.Conflict, ...]],
        ] = {}
        self._hunks: dict[tuple[pygit2.Oid, pygit2.Oid], list[tuple[int, int, int, int]]] = {}
        self._scripts = contentmerge.DiffCache()

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
    ) -> tuple[pygit2.Oid | None, tuple[contentmerge.Conflict, ...]]:
        """git's content merge of three blobs (contentmerge): the merged blob, or None
        and the conflicting regions."""
        key = (base, ours, theirs)
        known = self._merges.get(key)
        if known is not None:
            return known
        result = contentmerge.merge(
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
                for i1, c1, i2, c2 in contentmerge.diff_hunks(
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


def _blob_of(eng: _Engine, ver: _Ver | None) -> pygit2.Blob | None:
    if ver is None or not _is_blob(ver):
        return None
    return cast(pygit2.Blob, eng.repo[ver.oid])
