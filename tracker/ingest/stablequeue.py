"""Read the files of a stable-queue clone: ``series`` lists and the patch files they name.

Pure functions over bytes (the git side is :mod:`tracker.ingest.queuesync`). A queue patch is
what ``git format-patch`` writes for the mainline commit, with the stable header added::

    From <upstream sha> Mon Sep 17 00:00:00 2001
    From: Author <addr>
    Date: ...
    Subject: <subject>

    From: Author <addr>            (optional in-body From:)

    commit <sha> upstream.         (Greg; Sasha writes "[ Upstream commit <sha> ]")

    <message, trailers (Stable-dep-of: ...)>
    ---
    <diffstat, diff>

Some files are hand-made (no ``From <sha>`` line, headers only); a stable-only revert names the
commit it reverts instead of an upstream one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracker.ingest.stablemail import UPSTREAM_PATTERNS
from tracker.parse.mail import parse_subject
from tracker.parse.patch import Diff, parse_diff, split_message
from tracker.parse.trailers import ShaRef, parse_trailers

_FORMAT_PATCH_FROM = re.compile(r"^From (?P<sha>[0-9a-fA-F]{40}) Mon Sep 17 00:00:00 2001\s*$")
_HEADER_RE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9-]*):\s?(?P<value>.*)$")


@dataclass(frozen=True)
class QueueFile:
    """One patch file as the queue holds it."""

    subject: str
    author: str | None
    upstream: str | None
    upstream_rule: str | None
    # The commit a stable-only revert undoes, upstream (None for other patches).
    reverts_upstream: str | None
    stable_dep_of: tuple[ShaRef, ...]
    diff: Diff | None
    # The message after the headers (and in-body From:), and what follows its ``---`` line
    # (diffstat and diff), as the file has them. ``diff`` is None unless it was parsed.
    message: str
    patch: str


def parse_series(data: bytes) -> list[str]:
    """The patch names of a quilt ``series`` file, in order.

    Comments (``#``) and blank lines are skipped; quilt allows options after the name
    (``foo.patch -p0``), which are not part of it."""
    names: list[str] = []
    for raw in data.decode("utf-8", "surrogateescape").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            names.append(line.split()[0])
    return names


def release_of(name: str, series: str) -> str | None:
    """``6.12.24`` for the directory name ``6.12.24`` of series ``6.12``; None otherwise."""
    rest = name.removeprefix(series + ".")
    return name if rest != name and rest.isdigit() else None


def _headers(lines: list[str]) -> tuple[dict[str, str], int]:
    """The RFC 822-style header block at the top of the file: (lower-cased keys, body start)."""
    i = 1 if lines and _FORMAT_PATCH_FROM.match(lines[0]) else 0
    if i == 0 and lines and lines[0].startswith("From ") and not lines[0].startswith("From:"):
        i = 1  # an mbox From line of a mail saved as is
    headers: dict[str, str] = {}
    last: str | None = None
    while i < len(lines) and lines[i].strip():
        line = lines[i]
        m = _HEADER_RE.match(line)
        if line[:1] in " \t" and last:
            headers[last] += " " + line.strip()
        elif m:
            last = m.group("key").lower()
            headers.setdefault(last, m.group("value").strip())
        else:
            break  # no header block: the file starts with its message
        i += 1
    return headers, i


def parse_queue_file(data: bytes, *, with_diff: bool = False) -> QueueFile:
    """Subject, author, upstream reference, Stable-dep-of: lines and the diff of one file.

    The diff is parsed only when the file has no upstream line (its patch-id is then the link)
    or ``with_diff`` asks for it: a first sync reads tens of thousands of released patches."""
    text = data.decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    lines = text.split("\n")
    headers, start = _headers(lines)
    body = lines[start:]
    author = headers.get("from")
    j = 0
    while j < len(body) and not body[j].strip():
        j += 1
    if j < len(body) and body[j].startswith("From:"):
        author = body[j][5:].strip() or author
        body = body[j + 1 :]
    body_text = "\n".join(body)
    # format-patch's "---" line ends the message; files without one are split at their diff.
    sep = next((i for i, ln in enumerate(body) if ln == "---"), None)
    if sep is not None:
        message = "\n".join(body[:sep]).strip("\n")
        patch = "\n".join(body[sep + 1 :]).strip("\n") + "\n"
    else:
        message, raw = split_message(body_text)
        patch = raw or ""
    trailers = parse_trailers(message, UPSTREAM_PATTERNS)
    subject = parse_subject(headers.get("subject", "")).subject if "subject" in headers else ""
    if not subject:
        subject = next((ln.strip() for ln in message.split("\n") if ln.strip()), "")
    diff = parse_diff(body_text) if with_diff or not trailers.upstream else None
    return QueueFile(
        subject=subject,
        author=author,
        upstream=trailers.upstream,
        upstream_rule=trailers.upstream_rule,
        reverts_upstream=trailers.reverts_upstream[0] if trailers.reverts_upstream else None,
        stable_dep_of=tuple(r for r in trailers.stable_dep_of if r.valid),
        diff=diff,
        message=message,
        patch=patch,
    )


def git_form(diff: Diff) -> bytes:
    """The diff in git form, as bytes for ``git patch-id`` (undecodable bytes kept as they were).

    Greg's files carry ``--- a/x`` / ``+++ b/x`` without ``diff --git``: git patch-id sees no
    patch in them at all, so they are rewritten into git form first (:func:`parse_diff`)."""
    return diff.text.encode("utf-8", "surrogateescape")
