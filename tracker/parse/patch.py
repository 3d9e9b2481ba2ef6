"""Find, normalise and identify the diff inside a commit message or a patch mail.

Three shapes of diff reach tracker:

* git form: ``diff --git a/x b/x`` + extended headers + ``index`` + ``---``/``+++`` + hunks;
* plain form: Greg's quilt-exported review mails and stable-queue files, ``--- a/x``/``+++ b/x``
  with no ``diff --git`` line;
* quilt form: akpm's -mm mails, ``--- a/x~patchname``/``+++ a/x`` (both sides ``a/``), ended by
  a ``_`` line.

``git patch-id`` ignores everything before the first ``diff `` line, so plain and quilt diffs have
no id at all until they are rewritten into git form. :func:`parse_diff` does that rewrite;
:func:`patch_id` reproduces ``git patch-id --stable`` (git 2.39 ``builtin/patch-id.c``) byte for
byte on whatever text it is given, so the two together give plain, quilt and git forms of one
change the same id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from tracker.errors import SourceError

_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DIFF_GIT_RE = re.compile(r"^diff --git (?P<a>(?:\"[^\"]*\"|\S+)) (?P<b>(?:\"[^\"]*\"|\S+))\s*$")
_BASE85_RE = re.compile(r"^[A-Za-z][0-9A-Za-z!#$%&()*+;<=>?@^_`{|}~-]*$")
_QUILT_SUFFIX_RE = re.compile(r"~[\w.+-]+$")
_EXT_HEADER_PREFIXES = (
    "old mode ",
    "new mode ",
    "deleted file mode ",
    "new file mode ",
    "copy from ",
    "copy to ",
    "rename from ",
    "rename to ",
    "rename old ",
    "rename new ",
    "similarity index ",
    "dissimilarity index ",
    "index ",
)
DEV_NULL = "/dev/null"
# A patch-id of a diff this large is not worth computing; callers cap mail bodies earlier anyway.
MAX_DIFF_CHARS = 64 * 1024 * 1024


@dataclass(frozen=True)
class FileChange:
    """One file of a diff. Paths are repository-relative (``a/``/``b/`` and quilt ``~name`` off)."""

    old_path: str | None
    new_path: str | None
    status: str  # "modified", "added", "deleted", "renamed", "copied"
    old_mode: str | None
    new_mode: str | None
    binary: bool
    hunks: int
    added_lines: int
    removed_lines: int

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


@dataclass(frozen=True)
class Diff:
    """A diff rewritten into git form, with its stable patch-id.

    ``form`` is the shape it arrived in ("git", "plain", "quilt" or "mixed"). ``complete`` is False
    when a hunk ended before its line counts were met (a truncated or mangled mail).
    ``repaired_lines`` counts blank lines inside hunks that lost their leading space in transit.
    """

    text: str
    form: str
    files: tuple[FileChange, ...]
    patch_id: str | None
    complete: bool
    repaired_lines: int

    @property
    def paths(self) -> tuple[str, ...]:
        out: list[str] = []
        for f in self.files:
            for p in (f.old_path, f.new_path):
                if p and p not in out:
                    out.append(p)
        return tuple(out)

    @property
    def added_paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.files if f.status == "added")

    @property
    def deleted_paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.files if f.status == "deleted")

    @property
    def renamed(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (f.old_path or "", f.new_path or "") for f in self.files if f.status == "renamed"
        )


# --------------------------------------------------------------------------------------------
# git patch-id --stable, reproduced


_GIT_SPACE = b" \t\n\r"  # git's sane_ctype isspace: not \v or \f
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = b"0123456789"


def _remove_space(line: bytes) -> bytes:
    return line.translate(None, _GIT_SPACE)


def _is_oid_hex(p: bytes) -> bool:
    return len(p) >= 40 and all(c in _HEXDIGITS for c in p[:40])


def _strspn_digits(s: bytes, start: int) -> int:
    n = start
    while n < len(s) and s[n] in _DIGITS:
        n += 1
    return n - start


def _atoi(s: bytes, start: int) -> int:
    i = start
    while i < len(s) and s[i] in b" \t\n\v\f\r":
        i += 1
    sign = 1
    if i < len(s) and s[i] in b"+-":
        sign = -1 if s[i] == ord("-") else 1
        i += 1
    n = _strspn_digits(s, i)
    return sign * int(s[i : i + n]) if n else 0


def _at(s: bytes, i: int) -> int:
    return s[i] if i < len(s) else 0


def _scan_hunk_header(line: bytes, counts: list[int]) -> None:
    """git's scan_hunk_header: counts[0]/counts[1] become the before/after line counts.

    Assignments happen in git's order so a malformed header leaves the same partial state.
    """
    q = 4
    n = _strspn_digits(line, q)
    if _at(line, q + n) == ord(","):
        q += n + 1
        counts[0] = _atoi(line, q)
        n = _strspn_digits(line, q)
    else:
        counts[0] = 1
    if n == 0 or _at(line, q + n) != ord(" ") or _at(line, q + n + 1) != ord("+"):
        return
    r = q + n + 2
    n = _strspn_digits(line, r)
    if _at(line, r + n) == ord(","):
        r += n + 1
        counts[1] = _atoi(line, r)
    else:
        counts[1] = 1


class _IdState:
    def __init__(self) -> None:
        self.result = bytearray(20)
        self.ctx = hashlib.sha1()

    def flush(self) -> None:
        digest = self.ctx.digest()
        self.ctx = hashlib.sha1()
        carry = 0
        for i in range(20):
            carry += self.result[i] + digest[i]
            self.result[i] = carry & 0xFF
            carry >>= 8


def _split_lines(data: bytes) -> list[bytes]:
    # git reads with strbuf_getwholeline(..., '\n') and then uses C string functions, so a line
    # ends at '\n' only and anything after an embedded NUL is invisible.
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return [ln.split(b"\0", 1)[0] for ln in lines]


def _index_oids(line: bytes) -> tuple[bytes, bytes] | None:
    dots = line.find(b"..")
    if dots < 0:
        return None
    space = line.find(b" ", dots)
    end = space if space >= 0 else len(line) - 1
    return line[6:dots][:64], line[dots + 2 : end][:64]


def _one_patch_id(lines: list[bytes], pos: int, stable: bool) -> tuple[int, str, int, str | None]:
    """Mirror of get_one_patchid: (new position, id, hashed length, next commit name or None)."""
    st = _IdState()
    patchlen = 0
    counts = [-1, -1]  # before, after
    binary = False
    pre_oid = post_oid = b""
    next_name: str | None = None
    while pos < len(lines):
        line = lines[pos]
        pos += 1
        p = line
        prefixed = False
        for prefix in (b"commit ", b"From "):
            if line.startswith(prefix):
                p, prefixed = line[len(prefix) :], True
                break
        if not prefixed and line.startswith(b"\\ ") and len(line) > 12:
            continue
        if _is_oid_hex(p):
            next_name = p[:40].decode("ascii").lower()
            break
        if not patchlen and not line.startswith(b"diff "):
            continue
        if counts[0] == -1:
            if line.startswith((b"GIT binary patch", b"Binary files")):
                binary = True
                counts[0] = 0
                st.ctx.update(pre_oid)
                st.ctx.update(post_oid)
                if stable:
                    st.flush()
                continue
            if line.startswith(b"index "):
                oids = _index_oids(line)
                if oids:
                    pre_oid, post_oid = oids
                continue
            if line.startswith(b"--- "):
                counts = [1, 1]
            elif not (line[:1].isalpha() and line[:1].isascii()):
                break
        if binary:
            if line.startswith(b"diff "):
                binary = False
                counts[0] = -1
            continue
        if counts[0] == 0 and counts[1] == 0:
            if line.startswith(b"@@ -"):
                _scan_hunk_header(line, counts)
                continue
            if not line.startswith(b"diff "):
                break
            if stable:
                st.flush()
            counts = [-1, -1]
        first = line[:1]
        if first in (b"-", b" "):
            counts[0] -= 1
        if first in (b"+", b" "):
            counts[1] -= 1
        stripped = _remove_space(line)
        patchlen += len(stripped)
        st.ctx.update(stripped)
    st.flush()
    return pos, st.result.hex(), patchlen, next_name


def patch_ids(text: str | bytes, *, stable: bool = True) -> list[tuple[str, str]]:
    """Every (patch-id, commit name) pair ``git patch-id`` prints for this input.

    The commit name is the sha of the preceding ``From <sha>``/``commit <sha>`` line, or forty
    zeros, exactly as git prints it.
    """
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    if len(data) > MAX_DIFF_CHARS:
        raise SourceError(f"diff too large for patch-id ({len(data)} bytes)")
    lines = _split_lines(data)
    out: list[tuple[str, str]] = []
    name = "0" * 40
    pos = 0
    while pos < len(lines):
        pos, pid, patchlen, next_name = _one_patch_id(lines, pos, stable)
        if patchlen:
            out.append((pid, name))
        name = next_name or "0" * 40
    return out


def patch_id(text: str | bytes, *, stable: bool = True) -> str | None:
    """The ``git patch-id --stable`` of the first patch in ``text``; None when git prints none."""
    ids = patch_ids(text, stable=stable)
    return ids[0][0] if ids else None


# --------------------------------------------------------------------------------------------
# Finding and normalising the diff


@dataclass
class _File:
    diff_line: str | None = None
    ext_headers: list[str] = field(default_factory=list)
    minus: str | None = None
    plus: str | None = None
    binary_lines: list[str] = field(default_factory=list)
    hunks: list[list[str]] = field(default_factory=list)
    added: int = 0
    removed: int = 0


def _strip_path(raw: str, quilt: bool) -> str | None:
    """``--- a/x~name\\t2020-...`` -> ``x``; /dev/null -> None."""
    path = raw.split("\t", 1)[0].rstrip()
    if path.startswith('"') and path.endswith('"') and len(path) >= 2:
        path = path[1:-1]
    if path == DEV_NULL:
        return None
    if "/" in path:
        path = path.split("/", 1)[1]
    if quilt:
        path = _QUILT_SUFFIX_RE.sub("", path)
    return path or None


def _is_file_start(lines: list[str], i: int) -> bool:
    line = lines[i]
    if line.startswith("diff --git "):
        return True
    if line.startswith("diff -"):
        # Old quilt and GNU diff headers; only with a real ---/+++ pair after them.
        i += 1
        if i < len(lines) and lines[i].startswith("Index: "):
            i += 1
        line = lines[i] if i < len(lines) else ""
    return (
        line.startswith("--- ")
        and i + 2 < len(lines)
        and lines[i + 1].startswith("+++ ")
        and _HUNK_RE.match(lines[i + 2]) is not None
    )


def _find_start(lines: list[str]) -> int | None:
    for i in range(len(lines)):
        if _is_file_start(lines, i):
            return i
    return None


def _read_hunk(lines: list[str], i: int, m: re.Match[str], f: _File) -> tuple[int, bool, int]:
    """Consume one hunk starting at the ``@@`` line: (next index, complete, repaired lines)."""
    old_left = int(m.group(2)) if m.group(2) is not None else 1
    new_left = int(m.group(4)) if m.group(4) is not None else 1
    hunk = [lines[i]]
    i += 1
    repaired = 0
    while i < len(lines) and (old_left > 0 or new_left > 0):
        line = lines[i]
        if line == "":
            # Mail archives strip trailing whitespace, turning a blank context line into "".
            line = " "
            repaired += 1
        tag = line[0]
        if tag == " ":
            old_left -= 1
            new_left -= 1
        elif tag == "-":
            old_left -= 1
            f.removed += 1
        elif tag == "+":
            new_left -= 1
            f.added += 1
        elif tag != "\\":
            break
        hunk.append(line)
        i += 1
    while i < len(lines) and lines[i].startswith("\\ "):
        hunk.append(lines[i])
        i += 1
    complete = old_left <= 0 and new_left <= 0
    if not complete:
        # Blank lines borrowed for a hunk that then ran out were not context after all.
        while repaired and hunk[-1] == " ":
            hunk.pop()
            repaired -= 1
    f.hunks.append(hunk)
    return i, complete, repaired


def _read_binary(lines: list[str], i: int, f: _File) -> int:
    f.binary_lines.append(lines[i])
    if lines[i].startswith("Binary files"):
        return i + 1
    i += 1
    while i < len(lines):
        line = lines[i]
        if (
            line.startswith(("literal ", "delta "))
            or _BASE85_RE.match(line)
            or (
                line == ""
                and i + 1 < len(lines)
                and lines[i + 1].startswith(("literal ", "delta "))
            )
        ):
            f.binary_lines.append(line)
        else:
            break
        i += 1
    return i


def _read_file(lines: list[str], i: int) -> tuple[int, _File, bool, int]:
    f = _File()
    if lines[i].startswith("diff "):
        f.diff_line = lines[i]
        i += 1
        while i < len(lines) and lines[i].startswith(_EXT_HEADER_PREFIXES):
            f.ext_headers.append(lines[i])
            i += 1
        while i < len(lines) and lines[i].startswith(("Index: ", "====")):
            i += 1
        if i < len(lines) and lines[i].startswith(("GIT binary patch", "Binary files")):
            return _read_binary(lines, i, f), f, True, 0
    if i + 1 < len(lines) and lines[i].startswith("--- ") and lines[i + 1].startswith("+++ "):
        f.minus, f.plus = lines[i], lines[i + 1]
        i += 2
    complete, repaired = True, 0
    while i < len(lines) and (m := _HUNK_RE.match(lines[i])):
        i, ok, fixed = _read_hunk(lines, i, m, f)
        repaired += fixed
        if not ok:
            complete = False
            break
    return i, f, complete, repaired


def _read_files(lines: list[str], start: int) -> tuple[list[_File], bool, int, int]:
    """(files, complete, repaired lines, index just past the diff)."""
    files: list[_File] = []
    complete, repaired = True, 0
    i = start
    while i < len(lines) and _is_file_start(lines, i):
        before = i
        i, f, ok, fixed = _read_file(lines, i)
        files.append(f)
        repaired += fixed
        if not ok:
            complete = False
            break
        if i == before:
            break
    return files, complete, repaired, i


def _form_of(files: list[_File]) -> str:
    forms = set()
    for f in files:
        if f.diff_line and f.diff_line.startswith("diff --git "):
            forms.add("git")
        elif (f.plus is not None and f.plus[4:].startswith("a/")) or (
            f.minus is not None and _QUILT_SUFFIX_RE.search(f.minus.split("\t", 1)[0].rstrip())
        ):
            forms.add("quilt")
        else:
            forms.add("plain")
    if len(forms) == 1:
        return forms.pop()
    return "mixed" if forms else "git"


def _git_paths(f: _File) -> tuple[str | None, str | None]:
    m = _DIFF_GIT_RE.match(f.diff_line or "")
    old = new = None
    if m:
        old, new = _strip_path(m.group("a"), False), _strip_path(m.group("b"), False)
    for h in f.ext_headers:
        for key, is_new in (("rename from ", False), ("rename to ", True)):
            if h.startswith(key):
                if is_new:
                    new = h[len(key) :]
                else:
                    old = h[len(key) :]
        for key, is_new in (("copy from ", False), ("copy to ", True)):
            if h.startswith(key):
                if is_new:
                    new = h[len(key) :]
                else:
                    old = h[len(key) :]
    if f.minus is not None:
        minus = _strip_path(f.minus[4:], False)
        old = minus if minus or f.minus[4:].startswith(DEV_NULL) else old
    if f.plus is not None:
        plus = _strip_path(f.plus[4:], False)
        new = plus if plus or f.plus[4:].startswith(DEV_NULL) else new
    return old, new


def _header_value(f: _File, key: str) -> str | None:
    for h in f.ext_headers:
        if h.startswith(key):
            return h[len(key) :].strip() or None
    return None


def _describe(f: _File, quilt: bool) -> FileChange:
    if f.diff_line and f.diff_line.startswith("diff --git "):
        old, new = _git_paths(f)
    else:
        old = _strip_path(f.minus[4:], quilt) if f.minus else None
        new = _strip_path(f.plus[4:], quilt) if f.plus else None
    new_mode = _header_value(f, "new file mode ") or _header_value(f, "new mode ")
    old_mode = _header_value(f, "deleted file mode ") or _header_value(f, "old mode ")
    if _header_value(f, "deleted file mode ") or (old and new is None):
        status, new = "deleted", None
    elif _header_value(f, "new file mode ") or (new and old is None):
        status, old = "added", None
    elif _header_value(f, "rename from ") or _header_value(f, "rename old "):
        status = "renamed"
    elif _header_value(f, "copy from "):
        status = "copied"
    else:
        status = "modified"
    return FileChange(
        old_path=old,
        new_path=new,
        status=status,
        old_mode=old_mode,
        new_mode=new_mode,
        binary=bool(f.binary_lines),
        hunks=len(f.hunks),
        added_lines=f.added,
        removed_lines=f.removed,
    )


def _render(f: _File, change: FileChange) -> list[str]:
    out: list[str] = []
    if f.diff_line and f.diff_line.startswith("diff --git "):
        out.append(f.diff_line)
        out.extend(f.ext_headers)
        if f.minus is not None and f.plus is not None:
            out.extend((f.minus, f.plus))
    else:
        # git names both sides after the surviving path, also for added and deleted files.
        path = change.path
        out.append(f"diff --git a/{path} b/{path}")
        if change.status == "added":
            out.append("new file mode 100644")
        elif change.status == "deleted":
            out.append("deleted file mode 100644")
        out.append(f"--- a/{change.old_path}" if change.old_path else f"--- {DEV_NULL}")
        out.append(f"+++ b/{change.new_path}" if change.new_path else f"+++ {DEV_NULL}")
    out.extend(f.binary_lines)
    for hunk in f.hunks:
        out.extend(hunk)
    return out


def _lines_of(text: str) -> list[str]:
    if len(text) > MAX_DIFF_CHARS:
        raise SourceError(f"diff too large ({len(text)} characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def extract_diff(body: str) -> str | None:
    """The raw diff lines of a commit message or mail body, or None when there is no diff."""
    lines = _lines_of(body)
    start = _find_start(lines)
    if start is None:
        return None
    files, _, _, end = _read_files(lines, start)
    if not files or end <= start:
        return None
    return "\n".join(lines[start:end]) + "\n"


def split_message(body: str) -> tuple[str, str | None]:
    """(commit message, raw diff) of a patch body; the ``---`` line and diffstat are dropped."""
    lines = _lines_of(body)
    start = _find_start(lines)
    if start is None:
        return body.replace("\r\n", "\n").strip("\n"), None
    head = lines[:start]
    cut = len(head)
    for idx in range(len(head) - 1, -1, -1):
        if head[idx] == "---":
            cut = idx
            break
    message = "\n".join(head[:cut]).strip("\n")
    return message, extract_diff("\n".join(lines[start:]))


def parse_diff(body: str) -> Diff | None:
    """Find the diff in ``body``, rewrite it into git form and compute its stable patch-id."""
    lines = _lines_of(body)
    start = _find_start(lines)
    if start is None:
        return None
    files, complete, repaired, _ = _read_files(lines, start)
    if not files:
        return None
    form = _form_of(files)
    quilt = form in ("quilt", "mixed")
    changes = [_describe(f, quilt) for f in files]
    out: list[str] = []
    for f, change in zip(files, changes, strict=True):
        out.extend(_render(f, change))
    text = "\n".join(out) + "\n"
    return Diff(
        text=text,
        form=form,
        files=tuple(changes),
        patch_id=patch_id(text),
        complete=complete,
        repaired_lines=repaired,
    )
