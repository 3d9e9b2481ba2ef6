"""Per-path resolution of a three-way tree merge: the stages of one path, merge-ort's
process_entry, and handle_content_merge (modes, symlinks, binaries, text merge)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pygit2

from tracker.simulate.engine import _Engine
from tracker.simulate.objects import _S_IFLNK, _fmt, _is_reg, _Ver
from tracker.simulate.results import ConflictHunk, ConflictKind, FileConflict, LineRange

# The sides of a merge, as indices into a path's stages (0 is the base).
OURS, THEIRS = 1, 2
_SIDE_NAME = {OURS: "ours", THEIRS: "theirs"}


@dataclass
class _Entry:
    stages: list[_Ver | None]
    match_mask: int = 0
    resolved: bool = False
    result: _Ver | None = None
    path_conflict: tuple[ConflictKind, str] | None = None
    base_path: str | None = None


class _PathMerge:
    """merge-ort's process_entry and handle_content_merge for one path of a tree merge.

    A mixin of _Merge, which holds the engine and collects the conflicts; here only what one
    path's three versions (after rename processing) resolve to.
    """

    eng: _Engine
    conflicts: list[FileConflict]
    binary: list[str]

    def conflict(self, path: str, kind: ConflictKind, message: str, **kw: Any) -> None:
        self.conflicts.append(FileConflict(path, kind, message, **kw))

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
