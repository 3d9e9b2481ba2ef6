"""Maintainer-tree commit notifications: akpm's mm-commits mails, and tip-bot's tip-commits mails.

mm-commits: ``+ x.patch added to mm-unstable branch`` and ``[merged mm-stable] x.patch removed
from -mm tree`` (and other ``[reason]`` tags). Both carry the quilt patch after a line of dashes;
its diff is rewritten into git form by :mod:`tracker.parse.patch` so it gets the patch-id the
mainline commit will have.

Archive pages sometimes render these mails as text with line breaks collapsed (see
``samples/mm-commits-added-*.txt``). :func:`parse_mm_commits_text` accepts that form: the
metadata and trailers are recovered, the diff cannot be (``diff`` is None, ``flattened`` True).

tip-commits: ``[tip: x86/mm] subject`` with ``Commit-ID:``/``Author:``/... headers in the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from tracker.parse.mail import Mail, parse_date
from tracker.parse.patch import Diff, parse_diff, split_message
from tracker.parse.trailers import Trailers, parse_trailers

_ADDED_SUBJECT_RE = re.compile(r"^\+ (?P<file>\S+\.patch) added to (?P<branch>[\w.-]+) branch\s*$")
_REMOVED_SUBJECT_RE = re.compile(
    r"^\[(?P<reason>[^\]]+)\] (?P<file>\S+\.patch) removed from -mm tree\s*$"
)
_ADDED_BODY_RE = re.compile(
    r"The patch titled\s+Subject:\s*(?P<subject>.{1,1000}?)\s+has been added to the -mm\s+"
    r"(?P<branch>[\w.-]+) branch\.\s+Its filename is\s+(?P<file>\S+\.patch)",
    re.DOTALL,
)
_REMOVED_BODY_RE = re.compile(
    r"The quilt patch titled\s+Subject:\s*(?P<subject>.{1,1000}?)\s+has been removed from the -mm "
    r"tree\.\s+Its filename was\s+(?P<file>\S+\.patch)",
    re.DOTALL,
)
_REASON_RE = re.compile(
    r"This patch was dropped because\s+(?P<reason>.+?)(?:\n\s*\n|\Z)", re.DOTALL
)
# The notification text always opens the mail; looking further only costs time on hostile input.
_PREAMBLE_CHARS = 16 * 1024
_MERGED_INTO_RE = re.compile(r"merged into the (?P<branch>[\w.-]+) branch")
_DASHES_RE = re.compile(r"^-{20,}\s*$", re.MULTILINE)
_FLAT_HEADER_RE = re.compile(
    r"^-{20,}[ \t]*From:[ \t]*(?P<from>[^\n]+?)[ \t]+Subject:[ \t]*(?P<subject>[^\n]+?)"
    r"[ \t]+Date:[ \t]*(?P<date>[^\n]+?)[ \t]*$",
    re.MULTILINE,
)
_RELATED_RE = re.compile(r"Patches currently in -mm which might be from (?P<who>\S+) are")
_PATCH_FILE_RE = re.compile(r"\b[\w.+-]+\.patch\b")
_TRAILER_KEYS = (
    "Link",
    "Fixes",
    "Signed-off-by",
    "Acked-by",
    "Reviewed-by",
    "Tested-by",
    "Reported-by",
    "Suggested-by",
    "Co-developed-by",
    "Closes",
    "Cc",
    "Stable-dep-of",
)
_FLAT_TRAILER_RE = re.compile(r"\s+(?=(?:" + "|".join(_TRAILER_KEYS) + r"):\s)")
_ADDR_RE = re.compile(r"^\s*\"?(?P<name>[^\"<]*?)\"?\s*<?(?P<addr>[^<>\s]+@[^<>\s]+?)>?\s*$")
_TIP_SUBJECT_RE = re.compile(r"^\[tip:\s*(?P<branch>[^\]\s]+)\]\s*(?P<subject>.*)$")
_TIP_FIELD_RE = re.compile(r"^(?P<key>[A-Za-z-]+):\s*(?P<value>.*?)\s*$")
_SHA40_RE = re.compile(r"^[0-9a-fA-F]{40}$")

_STATE_BY_TAG = {
    "to-be-updated": "to-be-updated",
    "withdrawn": "withdrawn",
    "nacked": "nacked",
    "obsolete": "obsolete",
    "folded-merged": "folded",
    "merged": "merged",
    "dropped": "dropped",
}


@dataclass(frozen=True)
class MmPatch:
    """The patch an mm-commits mail carries (``diff`` is in git form)."""

    author_name: str | None
    author_email: str | None
    subject: str | None
    date: datetime | None
    message: str
    trailers: Trailers
    diff: Diff | None
    flattened: bool

    @property
    def link_msgids(self) -> tuple[str, ...]:
        return self.trailers.link_msgids

    @property
    def patch_id(self) -> str | None:
        return self.diff.patch_id if self.diff else None


@dataclass(frozen=True)
class MmAdded:
    kind: ClassVar[str] = "mm-added"
    msgid: str | None
    date: datetime | None
    filename: str
    branch: str
    patch_subject: str | None
    cc_stable: bool
    patch: MmPatch | None
    related_patches: tuple[str, ...]


@dataclass(frozen=True)
class MmRemoved:
    """``state`` is the branch merged into (mm-stable, mm-hotfixes-stable, ...) or one of
    to-be-updated / withdrawn / nacked / obsolete / folded / merged / dropped."""

    kind: ClassVar[str] = "mm-removed"
    msgid: str | None
    date: datetime | None
    filename: str
    reason_tag: str | None
    state: str
    merged_into: str | None
    reason_text: str | None
    patch_subject: str | None
    patch: MmPatch | None


@dataclass(frozen=True)
class TipCommit:
    kind: ClassVar[str] = "tip-commit"
    msgid: str
    date: datetime | None
    branch: str
    sha: str | None
    author_name: str | None
    author_email: str | None
    author_date: datetime | None
    committer: str | None
    committer_date: datetime | None
    subject: str
    message: str
    trailers: Trailers
    diff: Diff | None


MmNotification = MmAdded | MmRemoved


def _addr(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    m = _ADDR_RE.match(value)
    if m:
        return (m.group("name").strip() or None), m.group("addr").lower()
    return value.strip() or None, None


def _related(text: str) -> tuple[str, ...]:
    m = _RELATED_RE.search(text)
    if not m:
        return ()
    out: list[str] = []
    for name in _PATCH_FILE_RE.findall(text[m.end() :]):
        if name not in out:
            out.append(name)
    return tuple(out)


def _embedded_lines(section: str) -> MmPatch:
    lines = section.split("\n")
    headers: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip():
        key, sep, value = lines[i].partition(":")
        if not sep:
            break
        headers.setdefault(key.strip().lower(), value.strip())
        i += 1
    text = "\n".join(lines[i:])
    message, _ = split_message(text)
    name, addr = _addr(headers.get("from"))
    return MmPatch(
        author_name=name,
        author_email=addr,
        subject=headers.get("subject"),
        date=parse_date(headers.get("date")),
        message=message,
        trailers=parse_trailers(message),
        diff=parse_diff(text),
        flattened=False,
    )


def _embedded_flat(m: re.Match[str], text: str) -> MmPatch:
    rest = text[m.end() :]
    cut = re.search(r"\s---\s*$", rest, re.MULTILINE)
    message = rest[: cut.start()] if cut else rest
    message = _FLAT_TRAILER_RE.sub("\n", message).strip()
    name, addr = _addr(m.group("from"))
    return MmPatch(
        author_name=name,
        author_email=addr,
        subject=m.group("subject").strip(),
        date=parse_date(m.group("date")),
        message=message,
        trailers=parse_trailers(message),
        diff=None,
        flattened=True,
    )


def _embedded(body: str) -> MmPatch | None:
    flat = _FLAT_HEADER_RE.search(body)
    if flat:
        return _embedded_flat(flat, body)
    dashes = _DASHES_RE.search(body)
    if not dashes:
        return None
    return _embedded_lines(body[dashes.end() :].lstrip("\n"))


def _state(tag: str | None, reason: str | None) -> tuple[str, str | None]:
    merged = _MERGED_INTO_RE.search(reason or "")
    if tag:
        words = tag.split()
        if words[0] == "merged" and len(words) > 1:
            return words[1], words[1]
        if tag in _STATE_BY_TAG:
            return _STATE_BY_TAG[tag], merged.group("branch") if merged else None
    if merged:
        return merged.group("branch"), merged.group("branch")
    low = (reason or "").lower()
    for needle, state in (
        ("updated version", "to-be-updated"),
        ("withdrawn", "withdrawn"),
        ("nacked", "nacked"),
        ("obsolete", "obsolete"),
        ("folded into", "folded"),
    ):
        if needle in low:
            return state, None
    return "dropped", None


def _pick(group: str, *matches: re.Match[str] | None) -> str:
    for m in matches:
        if m:
            return m.group(group)
    return ""


def _notification(
    subject: str,
    body: str,
    msgid: str | None,
    date: datetime | None,
    cc_stable: bool,
) -> MmNotification | None:
    subject = " ".join(subject.split())
    added_s = _ADDED_SUBJECT_RE.match(subject)
    head = body[:_PREAMBLE_CHARS]
    added_b = _ADDED_BODY_RE.search(head)
    if added_s or added_b:
        return MmAdded(
            msgid=msgid,
            date=date,
            filename=_pick("file", added_s, added_b),
            branch=_pick("branch", added_s, added_b),
            patch_subject=" ".join(added_b.group("subject").split()) if added_b else None,
            cc_stable=cc_stable,
            patch=_embedded(body),
            related_patches=_related(body),
        )
    removed_s = _REMOVED_SUBJECT_RE.match(subject)
    removed_b = _REMOVED_BODY_RE.search(head)
    if not (removed_s or removed_b):
        return None
    reason_m = _REASON_RE.search(head)
    reason = " ".join(reason_m.group("reason").split()) if reason_m else None
    tag = removed_s.group("reason").strip() if removed_s else None
    state, merged_into = _state(tag, reason)
    return MmRemoved(
        msgid=msgid,
        date=date,
        filename=_pick("file", removed_s, removed_b),
        reason_tag=tag,
        state=state,
        merged_into=merged_into,
        reason_text=reason,
        patch_subject=" ".join(removed_b.group("subject").split()) if removed_b else None,
        patch=_embedded(body),
    )


def parse_mm_commits(mail: Mail) -> MmNotification | None:
    """An mm-commits notification, or None for any other mail."""
    stable = ("stable@vger.kernel.org", "stable@kernel.org")
    cc_stable = mail.addressed_to(*stable)
    return _notification(mail.subject, mail.body, mail.msgid, mail.date, cc_stable)


def parse_mm_commits_text(text: str, subject: str = "") -> MmNotification | None:
    """The same from an archive page rendered as text (line breaks possibly collapsed)."""
    flat_stable = re.search(r"\bCc:\s*<?stable@vger\.kernel\.org", text) is not None
    return _notification(subject, text.replace("\r\n", "\n"), None, None, flat_stable)


def _tip_fields(lines: list[str]) -> tuple[dict[str, str], int]:
    fields: dict[str, str] = {}
    i = 0
    while i < len(lines) and not lines[i].startswith("Commit-ID:"):
        i += 1
    while i < len(lines) and lines[i].strip():
        m = _TIP_FIELD_RE.match(lines[i])
        if not m:
            break
        fields.setdefault(m.group("key").lower(), m.group("value"))
        i += 1
    return fields, i


def parse_tip_commit(mail: Mail) -> TipCommit | None:
    """A tip-bot ``[tip: branch] subject`` commit notification, or None."""
    m = _TIP_SUBJECT_RE.match(" ".join(mail.subject.split()))
    if not m:
        return None
    lines = mail.body.split("\n")
    fields, i = _tip_fields(lines)
    text = "\n".join(lines[i:])
    message, _ = split_message(text)
    sha = fields.get("commit-id", "")
    name, addr = _addr(fields.get("author"))
    first = message.split("\n", 1)[0].strip()
    return TipCommit(
        msgid=mail.msgid,
        date=mail.date,
        branch=m.group("branch"),
        sha=sha.lower() if _SHA40_RE.match(sha) else None,
        author_name=name,
        author_email=addr,
        author_date=parse_date(fields.get("authordate")),
        committer=fields.get("committer"),
        committer_date=parse_date(fields.get("committerdate")),
        subject=first or m.group("subject"),
        message=message,
        trailers=parse_trailers(message),
        diff=parse_diff(text),
    )
