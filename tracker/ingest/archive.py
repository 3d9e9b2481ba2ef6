"""Mailing-list archive pages saved as text (pipermail, MHonArc-style list archives).

Best effort by design: these pages drop headers, obfuscate addresses (``user at host``) and strip
trailing whitespace (which breaks blank context lines in diffs; :mod:`tracker.parse.patch`
repairs those). Whatever can be recovered is returned; nothing here raises except on input that
is not text at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from tracker.errors import SourceError
from tracker.parse.mail import SubjectTags, normalize_msgid, parse_date, parse_subject
from tracker.parse.patch import Diff, parse_diff, split_message
from tracker.parse.trailers import Trailers, parse_trailers

MAX_PAGE_CHARS = 16 * 1024 * 1024

_NAV_RE = re.compile(r"^\s*(?:\[[^\]\n]{1,40}\]\s*){2,}$")
_PIPERMAIL_NAV_RE = re.compile(
    r"^\s*(?:Previous message|Next message|Messages sorted by|\*\s*(?:Previous|Next) message)"
)
_FOOTER_RES = (
    re.compile(r"^\s*More information about the .* mailing list"),
    re.compile(r"^\s*_{20,}\s*$"),
    re.compile(r"^\s*Lists\.\S+ is hosted with"),
    re.compile(r"^\s*Rackspace\s*$"),
)
_HEADER_RE = re.compile(
    r"^\s*(?P<key>From|Date|Subject|Message-id|Message-ID|To|Cc|In-reply-to|In-Reply-To|"
    r"References)\s*:\s*(?P<value>.*?)\s*$",
    re.IGNORECASE,
)
_PIPERMAIL_AUTHOR_RE = re.compile(
    r"^(?P<name>.*?)\s*(?P<local>[\w.+-]+) at (?P<domain>[\w.-]+)\s*$"
)
_MSGID_LINE_RE = re.compile(r"^\s*Message-I[Dd]:\s*<(?P<msgid>[^<>\s]+)>", re.MULTILINE)
_ATTRIBUTION_RE = re.compile(
    r"^(?:On .{0,120}?,\s*)?(?P<who>[^,>]{1,80}?)\s+(?:<[^>]*>\s*)?(?:wrote|writes):\s*$"
)
_QUOTE_RE = re.compile(r"^\s*>")
_ADDR_TRAILER_RE = re.compile(
    r"^(?:Signed-off-by|Cc|Reviewed-by|Acked-by|Tested-by|Reported-by|Suggested-by|"
    r"Co-developed-by|From):.*$",
    re.MULTILINE | re.IGNORECASE,
)
_OBFUSCATED_RE = re.compile(r"([\w.+-]+) at ([\w-]+(?:\.[\w-]+)+)")


@dataclass(frozen=True)
class ArchiveMessage:
    """``kind`` is "pipermail", "mhonarc" (header list or ``[Date Prev]`` navigation) or "text".

    ``new_text`` is what the author wrote; ``quoted`` the ``>`` lines with one level removed;
    ``attributions`` the names from "On ..., X wrote:" lines.
    """

    kind: str
    subject: str | None
    tags: SubjectTags | None
    author_name: str | None
    author_email: str | None
    date: datetime | None
    msgid: str | None
    in_reply_to: str | None
    body: str
    new_text: str
    quoted: str
    attributions: tuple[str, ...]
    message: str
    trailers: Trailers
    diff: Diff | None


def _deobfuscate(addr: str) -> str:
    return re.sub(r"\s+at\s+", "@", addr.strip()).lower()


def _deobfuscate_line(m: re.Match[str]) -> str:
    return _OBFUSCATED_RE.sub(r"\1@\2", m.group(0))


def _strip_chrome(lines: list[str]) -> tuple[list[str], bool]:
    """Drop navigation and footers; report whether MHonArc-style navigation was seen."""
    out: list[str] = []
    mhonarc = False
    for line in lines:
        if any(rx.match(line) for rx in _FOOTER_RES):
            break
        if _NAV_RE.match(line):
            mhonarc = True
            continue
        if _PIPERMAIL_NAV_RE.match(line):
            continue
        out.append(line)
    return out, mhonarc


def _first_nonblank(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _headers(lines: list[str], i: int) -> tuple[dict[str, str], int]:
    found: dict[str, str] = {}
    j = _first_nonblank(lines, i)
    while j < len(lines):
        m = _HEADER_RE.match(lines[j])
        if not m:
            if lines[j].strip() or not found:
                break
            j += 1
            continue
        found.setdefault(m.group("key").lower(), m.group("value"))
        j += 1
    return (found, j) if len(found) >= 2 else ({}, i)


def split_quotes(body: str) -> tuple[str, str, tuple[str, ...]]:
    """(new text, quoted text with one level of '>' removed, attribution names)."""
    lines = body.split("\n")
    new: list[str] = []
    quoted: list[str] = []
    names: list[str] = []
    for idx, line in enumerate(lines):
        if _QUOTE_RE.match(line):
            text = line.lstrip()[1:]
            quoted.append(text[1:] if text.startswith(" ") else text)
            continue
        nxt = lines[idx + 1] if idx + 1 < len(lines) else ""
        m = _ATTRIBUTION_RE.match(line.strip())
        if m and _QUOTE_RE.match(nxt):
            names.append(m.group("who").strip())
            continue
        new.append(line)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(new)).rstrip().strip("\n")
    return text, "\n".join(quoted).strip("\n"), tuple(dict.fromkeys(names))


def _pipermail_head(
    lines: list[str], i: int
) -> tuple[str | None, str | None, str | None, datetime | None, int] | None:
    """subject / "Name user at host" / date, the first three lines of a pipermail page."""
    s = _first_nonblank(lines, i)
    a = _first_nonblank(lines, s + 1)
    d = _first_nonblank(lines, a + 1)
    if d >= len(lines):
        return None
    author = _PIPERMAIL_AUTHOR_RE.match(lines[a].strip())
    date = parse_date(lines[d])
    if not author or date is None:
        return None
    name = author.group("name").strip() or None
    addr = f"{author.group('local')}@{author.group('domain')}".lower()
    return lines[s].strip(), name, addr, date, d + 1


def _author_of(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    m = re.match(r"^\s*\"?(?P<name>[^\"<]*?)\"?\s*<(?P<addr>[^<>]+)>\s*$", value)
    if m:
        return m.group("name").strip() or None, _deobfuscate(m.group("addr"))
    if "@" in value or " at " in value:
        return None, _deobfuscate(value)
    return value.strip() or None, None


def parse_archive_text(text: str) -> ArchiveMessage:
    """Recover one message from an archive page saved as text."""
    if not isinstance(text, str):
        raise SourceError("archive page must be text")
    if len(text) > MAX_PAGE_CHARS:
        raise SourceError(f"archive page too large ({len(text)} characters)")
    lines, mhonarc = _strip_chrome(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    kind = "mhonarc" if mhonarc else "text"
    subject = name = addr = msgid = parent = None
    date: datetime | None = None
    start = _first_nonblank(lines, 0)
    head = _pipermail_head(lines, start)
    if head:
        subject, name, addr, date, start = head
        kind = "pipermail"
    else:
        headers, after = _headers(lines, start)
        if not headers and start < len(lines):
            subject = lines[start].strip()
            headers, after = _headers(lines, start + 1)
            after = max(after, start + 1)
        if headers:
            kind = "mhonarc"
            subject = headers.get("subject") or subject
            name, addr = _author_of(headers.get("from"))
            date = parse_date(headers.get("date"))
            msgid = normalize_msgid(headers.get("message-id"))
            parent = normalize_msgid(headers.get("in-reply-to"))
        start = after
    body = "\n".join(lines[start:]).strip("\n")
    new, quoted, names = split_quotes(body)
    if msgid is None:
        m = _MSGID_LINE_RE.search(body)
        msgid = m.group("msgid") if m else None
    message, _ = split_message(new)
    return ArchiveMessage(
        kind=kind,
        subject=subject,
        tags=parse_subject(subject) if subject else None,
        author_name=name,
        author_email=addr,
        date=date,
        msgid=msgid,
        in_reply_to=parent,
        body=body,
        new_text=new,
        quoted=quoted,
        attributions=names,
        message=message,
        trailers=parse_trailers(_ADDR_TRAILER_RE.sub(_deobfuscate_line, message)),
        diff=parse_diff(new),
    )
