"""The tree merge of one cherry-pick: merge-ort's walk over the paths a commit touches, rename
relevance, directory renames and rename processing, and the step verdict of a pick."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pygit2

from tracker.errors import GitError
from tracker.simulate.engine import _Engine
from tracker.simulate.objects import _MAX_SCORE, _MODE_TREE, Changes, _ancestors, _dirname, _is_reg
from tracker.simulate.pathmerge import _SIDE_NAME, OURS, THEIRS, _Entry, _match_mask, _PathMerge
from tracker.simulate.renames import (
    _CONTENT,
    _LOCATION,
    _apply_dir_rename,
    _find_dir_rename,
    _git_hashmap_order,
    _Rel,
    _RenameDetector,
    _SideRenames,
)
from tracker.simulate.results import ConflictKind, FileConflict, RenameNote, StepResult, Verdict


@dataclass
class _Outcome:
    tree: pygit2.Oid | None
    conflicts: list[FileConflict]
    renames: list[RenameNote]
    binary: list[str]


class _Merge(_PathMerge):
    """One three-way merge (cherry-pick semantics: base = parent, ours = HEAD, theirs = commit).

    Renames are settled here, over the paths involved; what each path then resolves to comes
    from _PathMerge.
    """

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


# ---------------------------------------------------------------------------------------------
# One cherry-pick
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
