"""Rename detection as merge-ort does it: relevance, exact then basename then matrix matching
(diffcore_rename_extended), directory-rename counting, and the imitation of git's hashmap
iteration order that decides ties."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import pygit2

from tracker.simulate.engine import _Engine
from tracker.simulate.objects import _MAX_SCORE, _ancestors, _basename, _dirname, _is_reg, _Ver
from tracker.simulate.similarity import _MASK32


class _Rel(IntEnum):
    """dirs_removed relevance (merge-ort's enum dir_rename_relevance)."""

    NOT_RELEVANT = 0
    FOR_ANCESTOR = 1
    FOR_SELF = 2


_CONTENT = 1
_LOCATION = 2
_UNKNOWN_DIR = "/"


@dataclass
class _SideRenames:
    pairs: list[tuple[str, str, int]] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=dict)


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
