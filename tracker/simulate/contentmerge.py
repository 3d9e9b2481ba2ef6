"""git's default three-way file merge, in pure Python, so that clean/conflict verdicts match git.

A cherry-pick in git 2.39 goes merge-ort -> ll_merge -> ll_xdl_merge -> xdiff's xdl_merge with
level ZEALOUS, the default conflict style, no "favor" side, marker size 7, and the diff
algorithm merge-ort's merge_start() hardcodes: histogram (no whitespace flags, no indent
heuristic: merge-ort passes only the algorithm). libgit2's merge diffs with myers, and myers and
histogram pair lines differently often enough that real files (rst, C) merged cleanly in git but
conflicted in the simulator, so this module redoes the whole chain as git's xdiff does it,
written from reading xdiff/xprepare.c, xhistogram.c, xdiffi.c and xmerge.c:

- lines are records ending at '\\n' (the last one may lack it); two records are equal when their
  bytes are, newline included. Lines are interned to ints once per merge.
- histogram diff over the whole files: xprepare skips both xdl_trim_ends and
  xdl_cleanup_records for histogram, and trimming would change its answers, so none is done.
  A region whose common lines all occur more than 64 times falls back to git's myers (with its
  own trimming, cleanup of unmatched lines and cost heuristics) on that region.
- xdl_change_compact slides each change group as xdiff does (without the indent heuristic).
- xdl_do_merge pairs the two scripts, xdl_refine_conflicts re-diffs the two sides of each
  conflict (identical sides resolve), xdl_simplify_non_conflicts joins conflicts at most three
  lines apart.

The result is either git's merged bytes (so the blob id is git's) or the conflict regions.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, count

from tracker.errors import TrackerError

__all__ = ["Conflict", "DiffCache", "MergeResult", "diff_hunks", "merge"]

# xhistogram.c: a region whose best common element occurs more often than this in the first
# file is handed to the classic (myers) algorithm
_MAX_CHAIN_LENGTH = 64
# xdiffi.c cost heuristics of the classic algorithm
_MAX_COST_MIN = 256
_HEUR_MIN_COST = 256
_SNAKE_CNT = 20
_K_HEUR = 4
_LINE_MAX = sys.maxsize
# xprepare.c: discarding of lines without (or with too many) matches before myers
_MAX_EQLIMIT = 1024
_SIMSCAN_WINDOW = 100
_KPDIS_RUN = 4

_MARKER_SIZE = 7
_INVERT = bytes([1]) + bytes(255)  # translate table: 0 -> 1, anything else -> 0

# xdmerge_t modes
_CONFLICT = 0
_TAKE_OURS = 1
_TAKE_THEIRS = 2
_IDENTICAL = 4

Script = list[tuple[int, int, int, int]]  # (start in a, start in b, lines in a, lines in b)


@dataclass(frozen=True)
class Conflict:
    """One conflicting region, 0-based line offsets and counts in base, ours and theirs.

    After xdiff refines a conflict (or joins two), the base span is the one of the original
    overlapping changes, which is what a reader of the base (blame) wants.
    """

    base: int
    base_count: int
    ours: int
    ours_count: int
    theirs: int
    theirs_count: int


@dataclass(frozen=True)
class MergeResult:
    merged: bytes | None  # None when the merge conflicts
    conflicts: tuple[Conflict, ...]
    rendered: bytes  # the merged text, with git's conflict markers when it conflicts

    @property
    def clean(self) -> bool:
        return self.merged is not None


class _Text:
    """A file split into records: line i is parts[i] + b"\\n", except an incomplete last line."""

    __slots__ = ("complete", "ids", "n", "parts")

    def __init__(self, data: bytes, table: dict[bytes, int], serial: Iterator[int]) -> None:
        parts = data.split(b"\n")
        last = parts.pop()
        # a line's id is the serial number it got when first seen: ids are not dense, but
        # interning stays in C (dict.setdefault mapped over the lines)
        ids = list(map(table.setdefault, parts, serial))
        self.complete = not last
        if last:
            # a line without its newline differs from the same text with one; no complete
            # line's key contains b"\n", so this key cannot collide
            parts.append(last)
            ids.append(table.setdefault(last + b"\n", next(serial)))
        self.parts = parts
        self.ids = ids
        self.n = len(ids)

    def chunk(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        if end == self.n and not self.complete:
            if end - 1 == start:
                return self.parts[start]
            return b"\n".join(self.parts[start:end])
        return b"\n".join(self.parts[start:end]) + b"\n"


# ---------------------------------------------------------------------------------------------
# Diff: histogram with git's myers fallback, then change compaction and the edit script
# ---------------------------------------------------------------------------------------------


def _diff(a: Sequence[int], b: Sequence[int]) -> Script:
    """xdl_do_diff (histogram) + xdl_change_compact both ways + xdl_build_script."""
    ch1 = bytearray(len(a) + 2)  # ch[i + 1] flags line i; ch[0] and ch[n + 1] stay 0
    ch2 = bytearray(len(b) + 2)
    _histogram(a, b, ch1, ch2)
    _compact(a, ch1, b, ch2)
    _compact(b, ch2, a, ch1)
    return _script(ch1, len(a), ch2, len(b))


def _histogram(a: Sequence[int], b: Sequence[int], ch1: bytearray, ch2: bytearray) -> None:
    todo = [(0, len(a), 0, len(b))]
    while todo:
        s1, e1, s2, e2 = todo.pop()
        while True:
            if s1 >= e1 and s2 >= e2:
                break
            if s1 >= e1:
                ch2[s2 + 1 : e2 + 1] = b"\x01" * (e2 - s2)
                break
            if s2 >= e2:
                ch1[s1 + 1 : e1 + 1] = b"\x01" * (e1 - s1)
                break
            found = _find_lcs(a, s1, e1, b, s2, e2)
            if found is None:
                sub1, sub2 = _classic(a[s1:e1], b[s2:e2])
                ch1[s1 + 1 : e1 + 1] = sub1[1:-1]
                ch2[s2 + 1 : e2 + 1] = sub2[1:-1]
                break
            if not found:
                ch1[s1 + 1 : e1 + 1] = b"\x01" * (e1 - s1)
                ch2[s2 + 1 : e2 + 1] = b"\x01" * (e2 - s2)
                break
            b1, l1, b2, l2 = found
            todo.append((s1, b1, s2, b2))
            s1, s2 = l1 + 1, l2 + 1


def _find_lcs(
    a: Sequence[int], s1: int, e1: int, b: Sequence[int], s2: int, e2: int
) -> tuple[int, int, int, int] | tuple[()] | None:
    """xhistogram.c find_lcs over a[s1:e1] and b[s2:e2].

    Returns the chosen common run (first, last line in a, first, last line in b), () when
    there is none, or None when git falls back to the classic algorithm.
    """
    seg = a[s1:e1]
    counts = Counter(seg)
    count_of = counts.get
    # first occurrence of each line: later pairs win, so feed them last to first
    first = dict(zip(reversed(seg), range(e1 - 1, s1 - 1, -1), strict=True))
    index = a.index
    index_cnt = _MAX_CHAIN_LENGTH + 1
    has_common = False
    best: tuple[int, int, int, int] | tuple[()] = ()
    best_len = 0
    last1, last2 = e1 - 1, e2 - 1
    bp = s2
    while bp < e2:
        x = b[bp]
        b_next = bp + 1
        cnt = count_of(x)
        if cnt is not None:
            has_common = True
            if cnt <= index_cnt:
                at = first[x]
                while True:
                    as_, bs = at, bp
                    if at > s1 and bp > s2 and a[at - 1] == b[bp - 1]:
                        back = _run_back(a, at, b, bp, at - s1 if at - s1 < bp - s2 else bp - s2)
                        as_ -= back
                        bs -= back
                    ae, be = at, bp
                    if at < last1 and bp < last2 and a[at + 1] == b[bp + 1]:
                        room = last1 - at if last1 - at < last2 - bp else last2 - bp
                        ahead = _run_ahead(a, at + 1, b, bp + 1, room)
                        ae += ahead
                        be += ahead
                    rc = cnt
                    if rc > 1 and ae > as_:
                        low = min(map(counts.__getitem__, a[as_ : ae + 1]))
                        if low < rc:
                            rc = low
                    if b_next <= be:
                        b_next = be + 1
                    if best_len < ae - as_ or rc < index_cnt:
                        best = (as_, ae, bs, be)
                        best_len = ae - as_
                        index_cnt = rc
                    if ae + 1 >= e1:
                        break
                    try:
                        at = index(x, ae + 1, e1)
                    except ValueError:
                        break
        bp = b_next
    if has_common and index_cnt > _MAX_CHAIN_LENGTH:
        return None
    return best


def _run_ahead(a: Sequence[int], i: int, b: Sequence[int], j: int, limit: int) -> int:
    """How many lines a[i:] and b[j:] have in common at their start (at most limit).

    Compares growing slices (in C) and bisects the first one that differs, instead of
    stepping line by line in Python through long unchanged runs.
    """
    n, step = 0, 4
    while n < limit:
        size = step if step < limit - n else limit - n
        if a[i + n : i + n + size] == b[j + n : j + n + size]:
            n += size
            step <<= 1
            continue
        while size > 1:
            half = size >> 1
            if a[i + n : i + n + half] == b[j + n : j + n + half]:
                n += half
                size -= half
            else:
                size = half
        return n
    return n


def _run_back(a: Sequence[int], i: int, b: Sequence[int], j: int, limit: int) -> int:
    """How many lines end a[:i] and b[:j] alike (at most limit)."""
    n, step = 0, 4
    while n < limit:
        size = step if step < limit - n else limit - n
        if a[i - n - size : i - n] == b[j - n - size : j - n]:
            n += size
            step <<= 1
            continue
        while size > 1:
            half = size >> 1
            if a[i - n - half : i - n] == b[j - n - half : j - n]:
                n += half
                size -= half
            else:
                size = half
        return n
    return n


def _bogosqrt(n: int) -> int:
    i = 1
    while n > 0:
        n >>= 2
        i <<= 1
    return i


def _classic(a: Sequence[int], b: Sequence[int]) -> tuple[bytearray, bytearray]:
    """xdl_do_diff with the default (myers) algorithm on two whole sequences.

    As xdl_prepare_env does for myers: trim the common ends, then set aside lines that have
    no match on the other side (and runs of lines with too many matches), then run
    xdl_recs_cmp on what is left. Returns the change flags (offset by one, as _diff's).
    """
    n1, n2 = len(a), len(b)
    ch1 = bytearray(n1 + 2)
    ch2 = bytearray(n2 + 2)
    lim = min(n1, n2)
    start = 0
    while start < lim and a[start] == b[start]:
        start += 1
    tail = 0
    lim -= start
    while tail < lim and a[n1 - 1 - tail] == b[n2 - 1 - tail]:
        tail += 1
    end1, end2 = n1 - tail - 1, n2 - tail - 1
    keep1 = _cleanup(a, start, end1, Counter(b), ch1)
    keep2 = _cleanup(b, start, end2, Counter(a), ch2)
    h1 = [a[i] for i in keep1]
    h2 = [b[i] for i in keep2]
    _recs_cmp(h1, keep1, ch1, h2, keep2, ch2)
    return ch1, ch2


def _cleanup(
    a: Sequence[int], start: int, end: int, other: Counter[int], ch: bytearray
) -> list[int]:
    """xdl_cleanup_records for one side: the lines myers looks at; the rest are changed."""
    mlim = min(_bogosqrt(len(a)), _MAX_EQLIMIT)
    dis = bytearray(len(a) + 1)
    for i in range(start, end + 1):
        nm = other.get(a[i], 0)
        dis[i] = 0 if nm == 0 else (2 if nm >= mlim else 1)
    keep: list[int] = []
    for i in range(start, end + 1):
        d = dis[i]
        if d == 1 or (d == 2 and not _clean_mmatch(dis, i, start, end)):
            keep.append(i)
        else:
            ch[i + 1] = 1
    return keep


def _clean_mmatch(dis: bytearray, i: int, s: int, e: int) -> bool:
    """Whether a line with many matches sits in a run of unmatched lines (then discard it)."""
    if i - s > _SIMSCAN_WINDOW:
        s = i - _SIMSCAN_WINDOW
    if e - i > _SIMSCAN_WINDOW:
        e = i + _SIMSCAN_WINDOW
    r, rdis0, rpdis0 = 1, 0, 1
    while i - r >= s:
        d = dis[i - r]
        if d == 0:
            rdis0 += 1
        elif d == 2:
            rpdis0 += 1
        else:
            break
        r += 1
    if rdis0 == 0:
        return False
    r, rdis1, rpdis1 = 1, 0, 1
    while i + r <= e:
        d = dis[i + r]
        if d == 0:
            rdis1 += 1
        elif d == 2:
            rpdis1 += 1
        else:
            break
        r += 1
    if rdis1 == 0:
        return False
    rdis1 += rdis0
    rpdis1 += rpdis0
    return rpdis1 * _KPDIS_RUN < rpdis1 + rdis1


def _recs_cmp(
    h1: list[int],
    idx1: list[int],
    ch1: bytearray,
    h2: list[int],
    idx2: list[int],
    ch2: bytearray,
) -> None:
    """xdl_recs_cmp: divide and conquer with xdl_split; marks changed lines in ch1/ch2."""
    n1, n2 = len(h1), len(h2)
    ndiags = n1 + n2 + 3
    kf = [0] * ndiags
    kb = [0] * ndiags
    zero = n2 + 1  # list index of diagonal 0
    mxcost = max(_bogosqrt(ndiags), _MAX_COST_MIN)
    todo = [(0, n1, 0, n2, False)]
    while todo:
        off1, lim1, off2, lim2, need_min = todo.pop()
        while off1 < lim1 and off2 < lim2 and h1[off1] == h2[off2]:
            off1 += 1
            off2 += 1
        while off1 < lim1 and off2 < lim2 and h1[lim1 - 1] == h2[lim2 - 1]:
            lim1 -= 1
            lim2 -= 1
        if off1 == lim1:
            for k in range(off2, lim2):
                ch2[idx2[k] + 1] = 1
        elif off2 == lim2:
            for k in range(off1, lim1):
                ch1[idx1[k] + 1] = 1
        else:
            i1, i2, min_lo, min_hi = _split(
                h1, off1, lim1, h2, off2, lim2, kf, kb, zero, need_min, mxcost
            )
            todo.append((i1, lim1, i2, lim2, min_hi))
            todo.append((off1, i1, off2, i2, min_lo))


def _split(
    h1: list[int],
    off1: int,
    lim1: int,
    h2: list[int],
    off2: int,
    lim2: int,
    kf: list[int],
    kb: list[int],
    z: int,
    need_min: bool,
    mxcost: int,
) -> tuple[int, int, bool, bool]:
    """xdl_split: the middle snake of Myers' algorithm, with xdiff's cost cut-offs."""
    dmin, dmax = off1 - lim2, lim1 - off2
    fmid, bmid = off1 - off2, lim1 - lim2
    odd = (fmid - bmid) & 1
    fmin = fmax = fmid
    bmin = bmax = bmid
    kf[fmid + z] = off1
    kb[bmid + z] = lim1
    ec = 0
    while True:
        ec += 1
        got_snake = False
        if fmin > dmin:
            fmin -= 1
            kf[fmin - 1 + z] = -1
        else:
            fmin += 1
        if fmax < dmax:
            fmax += 1
            kf[fmax + 1 + z] = -1
        else:
            fmax -= 1
        for d in range(fmax, fmin - 1, -2):
            lo, hi = kf[d - 1 + z], kf[d + 1 + z]
            i1 = lo + 1 if lo >= hi else hi
            prev1 = i1
            i2 = i1 - d
            while i1 < lim1 and i2 < lim2 and h1[i1] == h2[i2]:
                i1 += 1
                i2 += 1
            if i1 - prev1 > _SNAKE_CNT:
                got_snake = True
            kf[d + z] = i1
            if odd and bmin <= d <= bmax and kb[d + z] <= i1:
                return i1, i2, True, True
        if bmin > dmin:
            bmin -= 1
            kb[bmin - 1 + z] = _LINE_MAX
        else:
            bmin += 1
        if bmax < dmax:
            bmax += 1
            kb[bmax + 1 + z] = _LINE_MAX
        else:
            bmax -= 1
        for d in range(bmax, bmin - 1, -2):
            lo, hi = kb[d - 1 + z], kb[d + 1 + z]
            i1 = lo if lo < hi else hi - 1
            prev1 = i1
            i2 = i1 - d
            while i1 > off1 and i2 > off2 and h1[i1 - 1] == h2[i2 - 1]:
                i1 -= 1
                i2 -= 1
            if prev1 - i1 > _SNAKE_CNT:
                got_snake = True
            kb[d + z] = i1
            if not odd and fmin <= d <= fmax and i1 <= kf[d + z]:
                return i1, i2, True, True
        if need_min:
            continue
        if got_snake and ec > _HEUR_MIN_COST:
            found = _heuristic_forward(h1, off1, lim1, h2, off2, lim2, kf, z, fmin, fmax, fmid, ec)
            if found is not None:
                return found[0], found[1], True, False
            found = _heuristic_backward(h1, off1, lim1, h2, off2, lim2, kb, z, bmin, bmax, bmid, ec)
            if found is not None:
                return found[0], found[1], False, True
        if ec >= mxcost:
            fbest = fbest1 = -1
            for d in range(fmax, fmin - 1, -2):
                i1 = min(kf[d + z], lim1)
                i2 = i1 - d
                if lim2 < i2:
                    i1 = lim2 + d
                    i2 = lim2
                if fbest < i1 + i2:
                    fbest = i1 + i2
                    fbest1 = i1
            bbest = bbest1 = _LINE_MAX
            for d in range(bmax, bmin - 1, -2):
                i1 = max(off1, kb[d + z])
                i2 = i1 - d
                if i2 < off2:
                    i1 = off2 + d
                    i2 = off2
                if i1 + i2 < bbest:
                    bbest = i1 + i2
                    bbest1 = i1
            if (lim1 + lim2) - bbest < fbest - (off1 + off2):
                return fbest1, fbest - fbest1, True, False
            return bbest1, bbest - bbest1, False, True


def _heuristic_forward(
    h1: list[int],
    off1: int,
    lim1: int,
    h2: list[int],
    off2: int,
    lim2: int,
    kf: list[int],
    z: int,
    fmin: int,
    fmax: int,
    fmid: int,
    ec: int,
) -> tuple[int, int] | None:
    best = 0
    out: tuple[int, int] | None = None
    for d in range(fmax, fmin - 1, -2):
        dd = d - fmid if d > fmid else fmid - d
        i1 = kf[d + z]
        i2 = i1 - d
        v = (i1 - off1) + (i2 - off2) - dd
        if (
            v > _K_HEUR * ec
            and v > best
            and off1 + _SNAKE_CNT <= i1 < lim1
            and off2 + _SNAKE_CNT <= i2 < lim2
        ):
            k = 1
            while h1[i1 - k] == h2[i2 - k]:
                if k == _SNAKE_CNT:
                    best = v
                    out = (i1, i2)
                    break
                k += 1
    return out


def _heuristic_backward(
    h1: list[int],
    off1: int,
    lim1: int,
    h2: list[int],
    off2: int,
    lim2: int,
    kb: list[int],
    z: int,
    bmin: int,
    bmax: int,
    bmid: int,
    ec: int,
) -> tuple[int, int] | None:
    best = 0
    out: tuple[int, int] | None = None
    for d in range(bmax, bmin - 1, -2):
        dd = d - bmid if d > bmid else bmid - d
        i1 = kb[d + z]
        i2 = i1 - d
        v = (lim1 - i1) + (lim2 - i2) - dd
        if (
            v > _K_HEUR * ec
            and v > best
            and off1 < i1 <= lim1 - _SNAKE_CNT
            and off2 < i2 <= lim2 - _SNAKE_CNT
        ):
            k = 0
            while h1[i1 + k] == h2[i2 + k]:
                if k == _SNAKE_CNT - 1:
                    best = v
                    out = (i1, i2)
                    break
                k += 1
    return out


def _compact(ids: Sequence[int], ch: bytearray, oids: Sequence[int], och: bytearray) -> None:
    """xdl_change_compact(xdf, xdfo) without the indent heuristic.

    xdiff walks every group, empty ones included, keeping a group of the other file in step.
    Groups are numbered here by how many unchanged lines precede them (equal in both files),
    so only non-empty groups are visited and the other file's group is looked up by number.
    """
    n = len(ids)
    no = len(oids)
    # positions of the other file's unchanged lines: group r sits between unchanged[r - 1]
    # and unchanged[r]
    unchanged = list(compress(range(no), och[1 : no + 1].translate(_INVERT)))
    nun = len(unchanged)

    def other_nonempty(r: int) -> bool:
        end = unchanged[r] if r < nun else no
        start = unchanged[r - 1] + 1 if r > 0 else 0
        return end > start

    pos = ch.find(1, 1)
    rank = pos - 1 if pos > 0 else 0  # unchanged lines before the first changed one
    while pos > 0 and pos <= n:
        start = pos - 1
        end = ch.find(0, pos) - 1
        while True:
            size = end - start
            matching = -1
            # slide up as far as possible, merging with groups above
            while start > 0 and ids[start - 1] == ids[end - 1]:
                start -= 1
                end -= 1
                ch[start + 1] = 1
                ch[end + 1] = 0
                rank -= 1
                while ch[start]:
                    start -= 1
            earliest_end = end
            if other_nonempty(rank):
                matching = end
            # then down as far as possible, merging with groups below
            while end < n and ids[start] == ids[end]:
                ch[start + 1] = 0
                ch[end + 1] = 1
                start += 1
                end += 1
                rank += 1
                while ch[end + 1]:
                    end += 1
                if other_nonempty(rank):
                    matching = end
            if size == end - start:
                break
        if end != earliest_end and matching != -1:
            # line the group up with the last group of the other file it can face
            while not other_nonempty(rank):
                start -= 1
                end -= 1
                ch[start + 1] = 1
                ch[end + 1] = 0
                rank -= 1
                while ch[start]:
                    start -= 1
        # next non-empty group: the unchanged lines in between each start a new (empty) group
        nxt = ch.find(1, end + 2)
        if nxt < 0:
            break
        rank += nxt - 1 - end
        pos = nxt


def _script(ch1: bytearray, n1: int, ch2: bytearray, n2: int) -> Script:
    """xdl_build_script: the groups of changed lines, in file order."""
    out: Script = []
    i1 = i2 = 0
    while i1 < n1 or i2 < n2:
        if ch1[i1 + 1] or ch2[i2 + 1]:
            l1 = ch1.find(0, i1 + 1) - 1
            l2 = ch2.find(0, i2 + 1) - 1
            out.append((i1, i2, l1 - i1, l2 - i2))
            i1, i2 = l1, l2
            continue
        p1 = ch1.find(1, i1 + 1)
        p2 = ch2.find(1, i2 + 1)
        k1 = (p1 - 1 if p1 > 0 else n1) - i1
        k2 = (p2 - 1 if p2 > 0 else n2) - i2
        k = min(k1, k2)
        if k <= 0:
            raise TrackerError("internal error: a diff left unpaired unchanged lines")
        i1 += k
        i2 += k
    return out


class DiffCache:
    """Edit scripts of pairs of texts, by keys the caller chooses (blob ids, say).

    A script depends on the two texts only, and a cherry-pick's "parent -> commit" side is
    the same whatever tree the commit is picked onto: a re-plan round and a prerequisite
    search's verifications merge the same commit onto other trees again and again.
    """

    def __init__(self, limit: int = 2048) -> None:
        self.limit = limit
        self._scripts: dict[tuple[Hashable, Hashable], Script] = {}

    def diff(self, keys: tuple[Hashable, Hashable], a: _Text, b: _Text) -> Script:
        known = self._scripts.get(keys)
        if known is None:
            known = _diff(a.ids, b.ids)
            if len(self._scripts) >= self.limit:
                self._scripts.clear()
            self._scripts[keys] = known
        return known


def diff_hunks(
    a: bytes,
    b: bytes,
    cache: DiffCache | None = None,
    keys: tuple[Hashable, Hashable] | None = None,
) -> list[tuple[int, int, int, int]]:
    """The changed regions from a to b as the merge sees them: 0-based start and count in a,
    then in b. With a cache, keys name a and b (both or neither)."""
    table: dict[bytes, int] = {}
    serial = count()
    ta, tb = _Text(a, table, serial), _Text(b, table, serial)
    script = cache.diff(keys, ta, tb) if cache and keys else _diff(ta.ids, tb.ids)
    return [(i1, c1, i2, c2) for i1, i2, c1, c2 in script]


# ---------------------------------------------------------------------------------------------
# Merge: xdl_merge / xdl_do_merge at level ZEALOUS, default style
# ---------------------------------------------------------------------------------------------


class _Hunk:
    __slots__ = ("chg0", "chg1", "chg2", "i0", "i1", "i2", "mode")

    def __init__(
        self, mode: int, i0: int, chg0: int, i1: int, chg1: int, i2: int, chg2: int
    ) -> None:
        self.mode = mode
        self.i0, self.chg0 = i0, chg0
        self.i1, self.chg1 = i1, chg1
        self.i2, self.chg2 = i2, chg2


def _append(
    hunks: list[_Hunk], mode: int, i0: int, chg0: int, i1: int, chg1: int, i2: int, chg2: int
) -> None:
    """xdl_append_merge: a hunk that touches the previous one joins it (a conflict if their
    sides differ)."""
    if hunks:
        m = hunks[-1]
        if i1 <= m.i1 + m.chg1 or i2 <= m.i2 + m.chg2:
            if mode != m.mode:
                m.mode = _CONFLICT
            m.chg0 = i0 + chg0 - m.i0
            m.chg1 = i1 + chg1 - m.i1
            m.chg2 = i2 + chg2 - m.i2
            return
    hunks.append(_Hunk(mode, i0, chg0, i1, chg1, i2, chg2))


def _pair(x1: Script, x2: Script, n0: int, o: _Text, t: _Text) -> list[_Hunk]:
    """The first part of xdl_do_merge: walk both scripts (base -> ours, base -> theirs)."""
    hunks: list[_Hunk] = []
    p = q = 0
    oids, tids = o.ids, t.ids
    while p < len(x1) and q < len(x2):
        a1, a2, c1, c2 = x1[p]
        b1, b2, d1, d2 = x2[q]
        if a1 + c1 < b1:
            _append(hunks, _TAKE_OURS, a1, c1, a2, c2, b2 - b1 + a1, c1)
            p += 1
            continue
        if b1 + d1 < a1:
            _append(hunks, _TAKE_THEIRS, b1, d1, a2 - a1 + b1, d1, b2, d2)
            q += 1
            continue
        if a1 != b1 or c1 != d1 or c2 != d2 or oids[a2 : a2 + c2] != tids[b2 : b2 + c2]:
            off = a1 - b1
            ffo = off + c1 - d1
            i0, i1, i2 = a1, a2, b2
            if off > 0:
                i0 -= off
                i1 -= off
            else:
                i2 += off
            chg0 = a1 + c1 - i0
            chg1 = a2 + c2 - i1
            chg2 = b2 + d2 - i2
            if ffo < 0:
                chg0 -= ffo
                chg1 -= ffo
            else:
                chg2 += ffo
            _append(hunks, _CONFLICT, i0, chg0, i1, chg1, i2, chg2)
        end1 = a1 + c1
        end2 = b1 + d1
        if end1 >= end2:
            q += 1
        if end2 >= end1:
            p += 1
    while p < len(x1):
        a1, a2, c1, c2 = x1[p]
        _append(hunks, _TAKE_OURS, a1, c1, a2, c2, a1 + t.n - n0, c1)
        p += 1
    while q < len(x2):
        b1, b2, d1, d2 = x2[q]
        _append(hunks, _TAKE_THEIRS, b1, d1, b1 + o.n - n0, d1, b2, d2)
        q += 1
    return hunks


def _refine(hunks: list[_Hunk], o: _Text, t: _Text) -> list[_Hunk]:
    """xdl_refine_conflicts: diff the two sides of each conflict and keep only what differs."""
    out: list[_Hunk] = []
    for m in hunks:
        if m.mode != _CONFLICT or m.chg1 == 0 or m.chg2 == 0:
            out.append(m)
            continue
        script = _diff(o.ids[m.i1 : m.i1 + m.chg1], t.ids[m.i2 : m.i2 + m.chg2])
        if not script:
            m.mode = _IDENTICAL
            out.append(m)
            continue
        for j1, j2, c1, c2 in script:
            out.append(_Hunk(_CONFLICT, m.i0, m.chg0, m.i1 + j1, c1, m.i2 + j2, c2))
    return out


def _simplify(hunks: list[_Hunk]) -> list[_Hunk]:
    """xdl_simplify_non_conflicts: conflicts at most three lines apart become one."""
    out: list[_Hunk] = []
    for m in hunks:
        if out:
            prev = out[-1]
            if prev.mode == _CONFLICT and m.mode == _CONFLICT and m.i1 - (prev.i1 + prev.chg1) <= 3:
                prev.chg1 = m.i1 + m.chg1 - prev.i1
                prev.chg2 = m.i2 + m.chg2 - prev.i2
                base_end = max(prev.i0 + prev.chg0, m.i0 + m.chg0)
                prev.i0 = min(prev.i0, m.i0)
                prev.chg0 = base_end - prev.i0
                continue
        out.append(m)
    return out


def merge(
    base: bytes,
    ours: bytes,
    theirs: bytes,
    labels: tuple[str, str] = ("ours", "theirs"),
    cache: DiffCache | None = None,
    keys: tuple[Hashable, Hashable, Hashable] | None = None,
) -> MergeResult:
    """git's content merge of three versions of a text file (labels name the conflict
    markers of the rendered text, as git's branch names do). With a cache, keys name base,
    ours and theirs (all or none)."""
    table: dict[bytes, int] = {}
    serial = count()
    b = _Text(base, table, serial)
    o = _Text(ours, table, serial)
    t = _Text(theirs, table, serial)
    if cache is not None and keys is not None:
        x1 = cache.diff((keys[0], keys[1]), b, o)
        x2 = cache.diff((keys[0], keys[2]), b, t)
    else:
        x1 = _diff(b.ids, o.ids)
        x2 = _diff(b.ids, t.ids)
    if not x1:
        return MergeResult(theirs, (), theirs)
    if not x2:
        return MergeResult(ours, (), ours)
    hunks = _simplify(_refine(_pair(x1, x2, b.n, o, t), o, t))
    conflicts = tuple(
        Conflict(m.i0, m.chg0, m.i1, m.chg1, m.i2, m.chg2) for m in hunks if m.mode == _CONFLICT
    )
    rendered = _render(hunks, b, o, t, labels)
    return MergeResult(None if conflicts else rendered, conflicts, rendered)


def _render(hunks: list[_Hunk], b: _Text, o: _Text, t: _Text, labels: tuple[str, str]) -> bytes:
    """xdl_fill_merge_buffer in the default style."""
    out: list[bytes] = []
    i = 0
    name1, name2 = (label.encode() for label in labels)
    for m in hunks:
        if m.mode == _CONFLICT:
            cr = b"\r" if _needs_cr(m, b, o, t) else b""
            out.append(o.chunk(i, m.i1))
            out.append(b"<" * _MARKER_SIZE + (b" " + name1 if name1 else b"") + cr + b"\n")
            out.append(_with_newline(o, m.i1, m.chg1, cr))
            out.append(b"=" * _MARKER_SIZE + cr + b"\n")
            out.append(_with_newline(t, m.i2, m.chg2, cr))
            out.append(b">" * _MARKER_SIZE + (b" " + name2 if name2 else b"") + cr + b"\n")
        elif m.mode == _TAKE_OURS:
            out.append(o.chunk(i, m.i1 + m.chg1))
        elif m.mode == _TAKE_THEIRS:
            out.append(o.chunk(i, m.i1))
            out.append(t.chunk(m.i2, m.i2 + m.chg2))
        else:
            continue
        i = m.i1 + m.chg1
    out.append(o.chunk(i, o.n))
    return b"".join(out)


def _with_newline(text: _Text, start: int, count: int, cr: bytes) -> bytes:
    data = text.chunk(start, start + count)
    if count > 0 and not data.endswith(b"\n"):
        data += cr + b"\n"
    return data


def _eol_crlf(text: _Text, i: int) -> int:
    """xmerge.c is_eol_crlf: 1 for CRLF, 0 for LF, -1 when the file cannot tell."""
    if i < text.n - 1:
        return int(text.parts[i].endswith(b"\r"))
    if text.n == 0:
        return -1
    if text.complete:
        return int(text.parts[i].endswith(b"\r"))
    if i == 0:
        return -1
    return int(text.parts[i - 1].endswith(b"\r"))


def _needs_cr(m: _Hunk, b: _Text, o: _Text, t: _Text) -> bool:
    """Markers end in CRLF when the lines around them do (is_cr_needed)."""
    needs = _eol_crlf(o, m.i1 - 1 if m.i1 else 0)
    if needs:
        needs = _eol_crlf(t, m.i2 - 1 if m.i2 else 0)
    if needs:
        needs = _eol_crlf(b, 0)
    return needs > 0
