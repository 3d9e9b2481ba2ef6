"""Mail patches: parsing git- and quilt-style diffs and applying them in memory like git am
(strict apply, then a 3-way merge with the preimage blobs like git am -3)."""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pygit2

from tracker.simulate.engine import _Engine
from tracker.simulate.objects import _HEX_RE, _check_rev, _open, _resolve_commit, _Ver
from tracker.simulate.pathmerge import _range
from tracker.simulate.results import (
    ConflictHunk,
    ConflictKind,
    FileConflict,
    MergeOptions,
    StepResult,
    Verdict,
)
from tracker.simulate.treemerge import _Merge, _Outcome, _step_from_outcome

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
