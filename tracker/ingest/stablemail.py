"""Recognise the mails the stable process sends and turn each into one typed record.

Kinds (``kind`` class attribute of each result):

* ``added``: 'Patch "..." has been added to the X-stable tree' (Greg's format-patch form, a patch
  forwarded from a contributor, or Sasha's ``git show`` form);
* ``failed``: 'FAILED: patch "..." failed to apply to X-stable tree' (Greg with reproduce block
  and "Possible dependencies", the old form without both, Sasha's variant);
* ``review-cover`` / ``review-patch``: a stable review series and its patches;
* ``autosel``: ``[PATCH AUTOSEL 6.12 03/10]`` patches;
* ``backport``: a ``[PATCH 6.1.y]``-style backport someone submitted;
* ``drop-request`` / ``dropped``: replies asking to drop a queued patch and the confirmation;
* ``tested``: a tester's reply to a review cover with ``Tested-by:`` lines.

Anything else gives None. Parsing is pure; see :func:`parse_stable_mail`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from tracker.parse.mail import Mail, SubjectTags, normalize_msgid, parse_date, parse_subject
from tracker.parse.patch import Diff, parse_diff, split_message
from tracker.parse.trailers import DEFAULT_UPSTREAM_PATTERNS, ShaRef, Trailers, parse_trailers

# Stable-only backports sometimes say where they came from in words instead of the usual lines.
UPSTREAM_PATTERNS: tuple[str, ...] = (
    *DEFAULT_UPSTREAM_PATTERNS,
    r"^\(?[Bb]ackported from (?:upstream |mainline )?(?:commit )?(?P<sha>[0-9a-f]{40})\)?\.?\s*$",
)

_SHA40 = r"[0-9a-fA-F]{40}"
_FAILED_SUBJECT_RE = re.compile(
    r'^FAILED: patch "(?P<subject>.*)" failed to apply to (?P<branch>\S+?)-stable tree\s*$',
    re.IGNORECASE,
)
_ADDED_SUBJECT_RE = re.compile(
    r'^patch "(?P<subject>.*)" (?:has been )?added to (?:the )?(?P<branch>\S+?)-stable tree\s*$',
    re.IGNORECASE,
)
_REVIEW_COVER_RE = re.compile(r"^(?P<release>\d+\.\d+(?:\.\d+)*)-rc(?P<rc>\d+) review\s*$")
_FORMAT_PATCH_FROM_RE = re.compile(rf"^>?From (?P<sha>{_SHA40}) Mon Sep 17 00:00:00 2001\s*$")
_MBOX_FROM_RE = re.compile(r"^>?From (?P<sender>\S+)\s+(?P<date>.+)$")
_GIT_SHOW_RE = re.compile(rf"^commit (?P<sha>{_SHA40})(?:\s.*)?$")
_CHERRY_PICK_RE = re.compile(rf"^git cherry-pick -x (?P<sha>{_SHA40})\s*$", re.MULTILINE)
_FETCH_RE = re.compile(r"^git fetch \S+ (?P<ref>\S+)\s*$", re.MULTILINE)
_IN_REPLY_TO_RE = re.compile(r"--in-reply-to '(?P<msgid>[^']+)'")
_DEP_RE = re.compile(r'^(?P<sha>[0-9a-fA-F]{7,40}) \("(?P<subject>.*)"\)\s*$')
_FILENAME_RE = re.compile(
    r"The filename of the patch is:\s*\n\s*(?P<file>\S+)\s*\n\s*and it can be found in the "
    r"(?P<dir>\S+) subdirectory",
)
_TITLED_RE = re.compile(r"added the patch titled\s*\n\s*\n?(?P<subject>[^\n]+)\n")
_REVIEW_MARKER_RE = re.compile(r"^\S+ review patch\.\s", re.MULTILINE)
_RELEASE_RE = re.compile(r"stable review cycle for the (?P<release>\S+?) release")
_COUNT_RE = re.compile(r"There (?:are|is) (?P<n>\d+) patch(?:es)? in this series")
_RESPONSES_RE = re.compile(r"Responses should be made by (?P<date>[^\n]+?)\.?\s*$", re.MULTILINE)
_RC_TREE_RE = re.compile(r"linux-stable-rc\.git (?P<branch>linux-\S+)")
_LLM_STATUS_RE = re.compile(r"\*\*Backport Status:\s*(?P<status>[A-Za-z]+)\*\*")
_TESTED_RE = re.compile(r"^\s*Tested-by:\s*(?P<who>.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_DROP_REQUEST_RE = re.compile(
    r"\b(?:please|pls|kindly|can you|could you)\b[^.\n]{0,60}?"
    r"\b(?:drop|revert|remove|not apply|don't apply|do not apply)\b"
    r"|\bshould (?:be )?(?:dropped|reverted)\b",
    re.IGNORECASE,
)
_DROPPED_RE = re.compile(
    r"^\s*(?:now\s+)?dropped(?:\s*[,.!]|\s+now\b|\s+from\b|\s*$)|\bnow dropped\b"
    r"|\b(?:I've|I have) (?:now )?(?:dropped|removed) (?:it|this|them|the patch)\b",
    re.IGNORECASE | re.MULTILINE,
)
_ATTRIBUTION_RE = re.compile(r"^On .{0,200}\bwrote:\s*$|^.{1,100} (?:writes|wrote):\s*$")
_ORIGINAL_COMMIT_MARK = "original commit in Linus's tree"


@dataclass(frozen=True)
class EmbeddedPatch:
    """The patch quoted inside a stable mail.

    ``sha`` is the commit named by the ``From <sha> Mon Sep 17`` or ``commit <sha>`` line: the
    mainline commit in Greg's mails, the stable-queue commit in Sasha's ``git show`` form, None
    when a contributor's mail was forwarded (then ``sender`` is the mbox ``From`` address).
    """

    sha: str | None
    sender: str | None
    author_name: str | None
    author_email: str | None
    date: datetime | None
    subject: str | None
    message: str
    trailers: Trailers
    diff: Diff | None

    @property
    def upstream(self) -> str | None:
        return self.trailers.upstream


@dataclass(frozen=True)
class Dependency:
    sha: str
    subject: str


@dataclass(frozen=True)
class QueueAdded:
    kind: ClassVar[str] = "added"
    msgid: str
    date: datetime | None
    branch: str
    patch_subject: str
    queue_filename: str | None
    queue_dir: str | None
    form: str  # "greg", "sasha" (git show) or "forwarded"
    upstream: str | None
    patch: EmbeddedPatch | None


@dataclass(frozen=True)
class FailedToApply:
    kind: ClassVar[str] = "failed"
    msgid: str
    date: datetime | None
    branch: str
    patch_subject: str
    sha: str | None
    fetch_ref: str | None
    reply_to: str | None
    dependencies: tuple[Dependency, ...]
    has_dependency_list: bool
    form: str  # "greg", "greg-old" (no reproduce block) or "sasha"
    patch: EmbeddedPatch | None


@dataclass(frozen=True)
class ShortlogEntry:
    author: str
    subject: str


@dataclass(frozen=True)
class ReviewCover:
    kind: ClassVar[str] = "review-cover"
    msgid: str
    date: datetime | None
    branch: str
    release: str
    rc: int
    patch_count: int
    responses_by: datetime | None
    rc_tree_branch: str | None
    shortlog: tuple[ShortlogEntry, ...]


@dataclass(frozen=True)
class ReviewPatch:
    kind: ClassVar[str] = "review-patch"
    msgid: str
    date: datetime | None
    cover_msgid: str | None
    branch: str
    index: int
    total: int
    subject: str
    author_name: str | None
    author_email: str | None
    upstream: str | None
    upstream_rule: str | None
    stable_dep_of: tuple[ShaRef, ...]
    trailers: Trailers
    diff: Diff | None
    review_marker: bool


@dataclass(frozen=True)
class AutoselPatch:
    kind: ClassVar[str] = "autosel"
    msgid: str
    date: datetime | None
    branch: str
    index: int | None
    total: int | None
    subject: str
    author_name: str | None
    author_email: str | None
    stable_base: str | None
    upstream: str | None
    llm_status: str | None
    trailers: Trailers
    diff: Diff | None


@dataclass(frozen=True)
class BackportSubmission:
    kind: ClassVar[str] = "backport"
    msgid: str
    date: datetime | None
    branch: str
    version: int | None
    index: int | None
    total: int | None
    subject: str
    author_name: str | None
    author_email: str | None
    upstream: str | None
    trailers: Trailers
    diff: Diff | None


@dataclass(frozen=True)
class DropRequest:
    kind: ClassVar[str] = "drop-request"
    msgid: str
    date: datetime | None
    parent_msgid: str | None
    branch: str | None
    patch_subject: str
    requester: str | None
    text: str


@dataclass(frozen=True)
class Dropped:
    kind: ClassVar[str] = "dropped"
    msgid: str
    date: datetime | None
    parent_msgid: str | None
    branch: str | None
    patch_subject: str
    by: str | None


@dataclass(frozen=True)
class ReviewTested:
    kind: ClassVar[str] = "tested"
    msgid: str
    date: datetime | None
    cover_msgid: str | None
    branch: str | None
    release: str
    rc: int
    tester: str | None
    tested_by: tuple[str, ...]


StableMail = (
    QueueAdded
    | FailedToApply
    | ReviewCover
    | ReviewPatch
    | AutoselPatch
    | BackportSubmission
    | DropRequest
    | Dropped
    | ReviewTested
)


# --------------------------------------------------------------------------------------------
# Embedded patches


def _header_block(lines: list[str], i: int) -> tuple[dict[str, str], int]:
    headers: dict[str, str] = {}
    last: str | None = None
    while i < len(lines) and lines[i].strip():
        line = lines[i]
        if line[:1] in " \t" and last:
            headers[last] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip().lower()
            headers.setdefault(last, value.strip())
        else:
            break
        i += 1
    return headers, i


def _split_addr(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    m = re.match(r"^\s*\"?(?P<name>[^\"<]*?)\"?\s*<(?P<addr>[^<>\s]+)>\s*$", value)
    if m:
        return (m.group("name").strip() or None), m.group("addr").lower()
    if "@" in value and " " not in value.strip():
        return None, value.strip().strip("<>").lower()
    return value.strip() or None, None


def _in_body_from(body_lines: list[str]) -> tuple[str | None, int]:
    """An in-body ``From:`` line at the top of a patch body (after blank lines)."""
    j = 0
    while j < len(body_lines) and not body_lines[j].strip():
        j += 1
    if j < len(body_lines) and body_lines[j].startswith("From:"):
        return body_lines[j][5:].strip(), j + 1
    return None, 0


def _parse_format_patch(lines: list[str], sha: str | None, sender: str | None) -> EmbeddedPatch:
    headers, i = _header_block(lines, 1)
    rest = lines[i:]
    author = headers.get("from")
    in_body, skip = _in_body_from(rest)
    if in_body:
        author, rest = in_body, rest[skip:]
    subject = headers.get("subject")
    if subject:
        subject = parse_subject(subject).subject
    text = "\n".join(rest)
    message, _ = split_message(text)
    name, addr = _split_addr(author)
    return EmbeddedPatch(
        sha=sha,
        sender=sender,
        author_name=name,
        author_email=addr,
        date=parse_date(headers.get("date")),
        subject=subject,
        message=message,
        trailers=parse_trailers(message, UPSTREAM_PATTERNS),
        diff=parse_diff(text),
    )


def _parse_git_show(lines: list[str], sha: str) -> EmbeddedPatch:
    headers, i = _header_block(lines, 1)
    msg_lines: list[str] = []
    j = i
    while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
        msg_lines.append(lines[j][4:] if lines[j].startswith("    ") else "")
        j += 1
    message = "\n".join(msg_lines).strip("\n")
    subject = message.split("\n", 1)[0].strip() or None
    name, addr = _split_addr(headers.get("author"))
    return EmbeddedPatch(
        sha=sha,
        sender=None,
        author_name=name,
        author_email=addr,
        date=parse_date(headers.get("date")),
        subject=subject,
        message=message,
        trailers=parse_trailers(message, UPSTREAM_PATTERNS),
        diff=parse_diff("\n".join(lines[j:])),
    )


def parse_embedded_patch(text: str) -> tuple[EmbeddedPatch | None, str]:
    """Find the first embedded patch in ``text``: (patch, form) with form "greg"/"sasha"/...."""
    lines = text.split("\n")
    for idx, line in enumerate(lines):
        m = _FORMAT_PATCH_FROM_RE.match(line)
        if m:
            return _parse_format_patch(lines[idx:], m.group("sha").lower(), None), "greg"
        m = _GIT_SHOW_RE.match(line)
        if m and idx + 1 < len(lines) and lines[idx + 1].startswith(("Author:", "Merge:")):
            return _parse_git_show(lines[idx:], m.group("sha").lower()), "sasha"
        m = _MBOX_FROM_RE.match(line)
        if m and idx + 1 < len(lines) and lines[idx + 1].startswith("From:"):
            return _parse_format_patch(lines[idx:], None, m.group("sender")), "forwarded"
    return None, "unknown"


# --------------------------------------------------------------------------------------------
# Kinds


def _clean_subject(raw: str) -> str:
    """A quoted patch title without an accidental ``Subject:`` and its ``[PATCH ...]`` tags."""
    raw = raw.strip()
    if raw.lower().startswith("subject:"):
        raw = raw[8:]
    return parse_subject(raw).subject or raw


def _branch_name(raw: str) -> str:
    raw = raw.strip()
    if raw.lower().startswith("linux-"):
        raw = raw[6:]
    return raw[:-2] if raw.endswith(".y") else raw


def _queue_added(mail: Mail, m: re.Match[str]) -> QueueAdded:
    body = mail.body
    fm = _FILENAME_RE.search(body)
    tm = _TITLED_RE.search(body)
    subject = _clean_subject(tm.group("subject") if tm else m.group("subject"))
    patch, form = parse_embedded_patch(body)
    return QueueAdded(
        msgid=mail.msgid,
        date=mail.date,
        branch=_branch_name(m.group("branch")),
        patch_subject=subject,
        queue_filename=fm.group("file") if fm else None,
        queue_dir=fm.group("dir") if fm else None,
        form=form if patch else "unknown",
        upstream=patch.upstream if patch else None,
        patch=patch,
    )


def _dependencies(body: str) -> tuple[tuple[Dependency, ...], bool]:
    lines = body.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "Possible dependencies:":
            deps: list[Dependency] = []
            for dep_line in lines[i + 1 :]:
                stripped = dep_line.strip()
                if stripped.lower().startswith("thanks") or stripped.startswith("---"):
                    break
                dm = _DEP_RE.match(stripped)
                if dm:
                    deps.append(Dependency(dm.group("sha").lower(), dm.group("subject")))
            return tuple(deps), True
    return (), False


def _failed(mail: Mail, m: re.Match[str]) -> FailedToApply:
    body = mail.body
    cut = body.find(_ORIGINAL_COMMIT_MARK)
    preamble = body if cut < 0 else body[:cut]
    original = "" if cut < 0 else body[cut:].split("\n", 1)[-1]
    patch, _ = parse_embedded_patch(original) if original else (None, "unknown")
    cm = _CHERRY_PICK_RE.search(preamble)
    sha = cm.group("sha").lower() if cm else (patch.sha if patch else None)
    deps, has_deps = _dependencies(preamble)
    rm = _IN_REPLY_TO_RE.search(preamble)
    fm = _FETCH_RE.search(preamble)
    sasha = "sashal@" in (mail.from_email or "") or re.search(r"^Sasha\s*$", preamble, re.M)
    form = "greg" if cm or fm else ("sasha" if sasha else "greg-old")
    return FailedToApply(
        msgid=mail.msgid,
        date=mail.date,
        branch=_branch_name(m.group("branch")),
        patch_subject=_clean_subject(m.group("subject")),
        sha=sha,
        fetch_ref=fm.group("ref") if fm else None,
        reply_to=normalize_msgid(rm.group("msgid")) if rm else None,
        dependencies=deps,
        has_dependency_list=has_deps,
        form=form,
        patch=patch,
    )


def _shortlog(body: str) -> tuple[ShortlogEntry, ...]:
    start = body.find("Pseudo-Shortlog of commits:")
    if start < 0:
        return ()
    entries: list[ShortlogEntry] = []
    author: str | None = None
    for line in body[start:].split("\n")[1:]:
        if line.startswith("----") or line.startswith("Diffstat"):
            break
        if not line.strip():
            continue
        if line[:1] in " \t":
            if author:
                entries.append(ShortlogEntry(author, line.strip()))
        else:
            author = line.strip()
    return tuple(entries)


def _review_cover(mail: Mail, tags: SubjectTags, m: re.Match[str]) -> ReviewCover:
    body = mail.body
    count_m = _COUNT_RE.search(body)
    resp_m = _RESPONSES_RE.search(body)
    tree_m = _RC_TREE_RE.search(body)
    return ReviewCover(
        msgid=mail.msgid,
        date=mail.date,
        branch=tags.stable_branch or "",
        release=m.group("release"),
        rc=int(m.group("rc")),
        patch_count=int(count_m.group("n")) if count_m else (tags.total or 0),
        responses_by=parse_date(resp_m.group("date")) if resp_m else None,
        rc_tree_branch=tree_m.group("branch") if tree_m else None,
        shortlog=_shortlog(body),
    )


def _patch_body(mail: Mail) -> tuple[str, str | None]:
    """(text after the review preamble, in-body author) of a patch mail."""
    body = mail.body
    sep = re.search(r"^-{10,}\s*$", body[:2000], re.MULTILINE)
    if sep and _REVIEW_MARKER_RE.search(body[: sep.start()]):
        body = body[sep.end() :]
    lines = body.split("\n")
    in_body, skip = _in_body_from(lines)
    if in_body:
        body = "\n".join(lines[skip:])
    return body, in_body


def _author(in_body: str | None, mail: Mail) -> tuple[str | None, str | None]:
    if in_body:
        return _split_addr(in_body)
    return mail.from_name, mail.from_email


def _review_patch(mail: Mail, tags: SubjectTags, marker: bool) -> ReviewPatch:
    body, in_body = _patch_body(mail)
    message, _ = split_message(body)
    trailers = parse_trailers(message, UPSTREAM_PATTERNS)
    name, addr = _author(in_body, mail)
    return ReviewPatch(
        msgid=mail.msgid,
        date=mail.date,
        cover_msgid=mail.parent,
        branch=tags.stable_branch or "",
        index=tags.index or 0,
        total=tags.total or 0,
        subject=tags.subject,
        author_name=name,
        author_email=addr,
        upstream=trailers.upstream,
        upstream_rule=trailers.upstream_rule,
        stable_dep_of=trailers.stable_dep_of,
        trailers=trailers,
        diff=parse_diff(body),
        review_marker=marker,
    )


def _autosel(mail: Mail, tags: SubjectTags) -> AutoselPatch:
    body, in_body = _patch_body(mail)
    message, _ = split_message(body)
    trailers = parse_trailers(message, UPSTREAM_PATTERNS)
    name, addr = _author(in_body, mail)
    llm = _LLM_STATUS_RE.search(mail.body)
    return AutoselPatch(
        msgid=mail.msgid,
        date=mail.date,
        branch=tags.stable_branch or "",
        index=tags.index,
        total=tags.total,
        subject=tags.subject,
        author_name=name,
        author_email=addr,
        stable_base=mail.x_stable_base,
        upstream=trailers.upstream,
        llm_status=llm.group("status").upper() if llm else None,
        trailers=trailers,
        diff=parse_diff(body),
    )


def _backport(mail: Mail, tags: SubjectTags) -> BackportSubmission:
    body, in_body = _patch_body(mail)
    message, _ = split_message(body)
    trailers = parse_trailers(message, UPSTREAM_PATTERNS)
    name, addr = _author(in_body, mail)
    return BackportSubmission(
        msgid=mail.msgid,
        date=mail.date,
        branch=tags.stable_branch or "",
        version=tags.version,
        index=tags.index,
        total=tags.total,
        subject=tags.subject,
        author_name=name,
        author_email=addr,
        upstream=trailers.upstream,
        trailers=trailers,
        diff=parse_diff(body),
    )


def new_text(body: str) -> str:
    """The reply's own words: quoted lines, attributions and the signature removed."""
    out: list[str] = []
    lines = body.split("\n")
    for i, line in enumerate(lines):
        if line.rstrip() == "--":
            break
        if line.lstrip().startswith(">"):
            continue
        nxt = lines[i + 1].lstrip() if i + 1 < len(lines) else ""
        if _ATTRIBUTION_RE.match(line.strip()) and (nxt.startswith(">") or not nxt):
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


def _reply_target(tags: SubjectTags) -> tuple[str | None, str, bool]:
    """(branch, patch subject, is a stable-process thread) named by the quoted subject."""
    inner = tags.subject
    for rx in (_ADDED_SUBJECT_RE, _FAILED_SUBJECT_RE):
        m = rx.match(inner)
        if m:
            return _branch_name(m.group("branch")), _clean_subject(m.group("subject")), True
    return tags.stable_branch, inner, tags.stable_branch is not None


def _reply(mail: Mail, tags: SubjectTags) -> StableMail | None:
    text = new_text(mail.body)
    sender = mail.from_email or mail.from_name
    cover = _REVIEW_COVER_RE.match(tags.subject) if tags.index == 0 else None
    if cover:
        tested = tuple(m.group("who") for m in _TESTED_RE.finditer(text))
        if tested:
            return ReviewTested(
                msgid=mail.msgid,
                date=mail.date,
                cover_msgid=mail.parent,
                branch=tags.stable_branch,
                release=cover.group("release"),
                rc=int(cover.group("rc")),
                tester=sender,
                tested_by=tested,
            )
    branch, subject, stable_thread = _reply_target(tags)
    if not stable_thread:
        return None
    if _DROPPED_RE.search(text):
        return Dropped(mail.msgid, mail.date, mail.parent, branch, subject, sender)
    if _DROP_REQUEST_RE.search(text):
        return DropRequest(mail.msgid, mail.date, mail.parent, branch, subject, sender, text)
    return None


def _is_review_patch(mail: Mail, tags: SubjectTags) -> tuple[bool, bool]:
    """(is a review patch, has the '-stable review patch' marker line)."""
    marker = bool(_REVIEW_MARKER_RE.search(mail.body[:500]))
    if tags.branch_suffix_y or tags.index is None or not tags.index:
        return False, marker
    padded = tags.counter_width is not None and tags.counter_width > 1
    quilt = "quilt" in (mail.user_agent or "").lower()
    x_review = (mail.x_stable or "").lower() == "review"
    return (marker or x_review or quilt or (padded and mail.parent is not None)), marker


def parse_stable_mail(mail: Mail) -> StableMail | None:
    """Classify a parsed mail; None when it is not one of the stable process mails."""
    tags = mail.tags
    if tags.is_reply:
        return _reply(mail, tags)
    subject = " ".join(mail.subject.split())
    m = _FAILED_SUBJECT_RE.match(subject)
    if m:
        return _failed(mail, m)
    m = _ADDED_SUBJECT_RE.match(subject)
    if m:
        return _queue_added(mail, m)
    if not tags.is_patch or tags.stable_branch is None:
        return None
    if tags.autosel:
        return _autosel(mail, tags)
    cover = _REVIEW_COVER_RE.match(tags.subject)
    if tags.index == 0 and cover:
        return _review_cover(mail, tags, cover)
    is_review, marker = _is_review_patch(mail, tags)
    if is_review:
        return _review_patch(mail, tags, marker)
    if tags.index == 0:
        return None
    return _backport(mail, tags)
