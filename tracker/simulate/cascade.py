"""Cascades and conflict texts: which lines an earlier step wrote (a conflict on them is BLOCKED
by that step) and the hunk texts a FAILED-patch reader sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pygit2

from tracker.simulate.engine import _Engine
from tracker.simulate.objects import _is_reg, _Ver
from tracker.simulate.results import ConflictKind, FileConflict, HunkText, LineRange
from tracker.simulate.treemerge import _parent_tree

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
