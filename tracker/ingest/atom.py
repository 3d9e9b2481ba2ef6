"""Atom feeds: public-inbox (``new.atom``, search results) and cgit (``/atom/?h=<branch>``).

Feeds are triggers, not data: a public-inbox entry names a message (its Message-ID is only in
``<link href>``), a cgit entry names a commit (``<id>`` is the sha, bare or ``urn:sha1:``) and
carries its full message, whose trailers are parsed so a poller can react without git.

defusedxml is not available, so any DOCTYPE or ENTITY declaration is refused before the stdlib
parser sees the document: without declarations there is nothing to expand.
"""

from __future__ import annotations

import html.entities
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from tracker.errors import SourceError
from tracker.parse.trailers import Trailers, parse_trailers

ATOM_NS = "http://www.w3.org/2005/Atom"
THREAD_NS = "http://purl.org/syndication/thread/1.0"
XHTML_NS = "http://www.w3.org/1999/xhtml"
MAX_FEED_BYTES = 32 * 1024 * 1024

_A = f"{{{ATOM_NS}}}"
_DECL_RE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_NAMED_ENTITY_RE = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"lt", "gt", "amp", "quot", "apos"})
_SHA_RE = re.compile(r"^(?:urn:sha1:)?(?P<sha>[0-9a-fA-F]{40})$")
_TAG_RE = re.compile(r"<[^>]*>")
_COMMIT_LINK_RE = re.compile(r"[?&]id=(?P<sha>[0-9a-fA-F]{40})\b")


@dataclass(frozen=True)
class InboxEntry:
    """A public-inbox message; ``msgid`` is decoded from the entry's link."""

    msgid: str
    url: str
    title: str
    author_name: str | None
    author_email: str | None
    updated: datetime | None
    in_reply_to: str | None
    body: str


@dataclass(frozen=True)
class CommitEntry:
    """A cgit commit: ``updated`` is the committer date, ``published`` the author date."""

    sha: str
    url: str | None
    subject: str
    author_name: str | None
    author_email: str | None
    updated: datetime | None
    published: datetime | None
    body: str
    trailers: Trailers

    @property
    def message(self) -> str:
        return f"{self.subject}\n\n{self.body}".rstrip("\n") if self.body else self.subject


@dataclass(frozen=True)
class Feed:
    """``kind`` is "public-inbox", "cgit" or "empty"; entries without a usable id are counted in
    ``skipped`` rather than guessed."""

    kind: str
    title: str | None
    updated: datetime | None
    self_url: str | None
    inbox_entries: tuple[InboxEntry, ...]
    commit_entries: tuple[CommitEntry, ...]
    skipped: int


def _numeric_entities(text: str) -> str:
    # cgit and public-inbox escape with HTML entities; XML knows only five of them by name.
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in _XML_ENTITIES:
            return m.group(0)
        cp = html.entities.name2codepoint.get(name)
        return f"&#{cp};" if cp is not None else f"&amp;{name};"

    return _NAMED_ENTITY_RE.sub(repl, text)


def _root(data: bytes) -> ET.Element:
    if not isinstance(data, bytes | bytearray):
        raise SourceError("feed must be bytes")
    if len(data) > MAX_FEED_BYTES:
        raise SourceError(f"feed too large ({len(data)} bytes)")
    if _DECL_RE.search(data):
        raise SourceError("refusing feed with DOCTYPE/ENTITY declarations")
    head = bytes(data[:512]).lstrip().lower()
    if head.startswith((b"<html", b"<head", b"<body")):
        raise SourceError("expected an Atom feed, got HTML")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        text = bytes(data).decode("latin-1")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)  # the declared encoding no longer applies
    try:
        root = ET.fromstring(_numeric_entities(text))
    except ET.ParseError as exc:
        raise SourceError(f"feed is not well-formed XML: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"feed is not parsable XML: {type(exc).__name__}") from exc
    if root.tag != f"{_A}feed":
        tag = root.tag.rsplit("}", 1)[-1]
        raise SourceError(f"expected an Atom <feed>, got <{tag}>")
    return root


def _text(el: ET.Element | None) -> str | None:
    if el is None:
        return None
    value = "".join(el.itertext())
    return value.strip() or None


def parse_atom_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _author(entry: ET.Element) -> tuple[str | None, str | None]:
    author = entry.find(f"{_A}author")
    if author is None:
        return None, None
    email = _text(author.find(f"{_A}email"))
    return _text(author.find(f"{_A}name")), email.lower() if email else None


def msgid_from_url(url: str) -> str | None:
    """``https://lore.kernel.org/linux-mm/<pct-encoded msgid>/`` -> the Message-ID."""
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        return None
    segments = [s for s in path.split("/") if s]
    for seg in reversed(segments):
        decoded = unquote(seg)
        if "@" in decoded:
            return decoded.strip("<>") or None
    # Ids without '@' exist; public-inbox puts the id right after the inbox name.
    if len(segments) >= 2 and segments[-1] not in ("T", "t", "raw", "new.atom"):
        return unquote(segments[1]).strip("<>") or None
    return None


def _link(entry: ET.Element) -> str | None:
    fallback = None
    for link in entry.findall(f"{_A}link"):
        href = link.get("href")
        if href and link.get("rel", "alternate") == "alternate":
            return href
        fallback = fallback or href
    return fallback


def _content(entry: ET.Element) -> str:
    """The text content; xhtml content with its tags stripped when there is no text form."""
    xhtml = None
    for content in entry.findall(f"{_A}content"):
        ctype = content.get("type", "text")
        if ctype == "text":
            return (content.text or "").strip("\n")
        if ctype == "html":
            return html.unescape(_TAG_RE.sub("", content.text or "")).strip("\n")
        if ctype == "xhtml" and xhtml is None:
            xhtml = "".join(content.itertext()).strip("\n")
    return xhtml or ""


def _inbox_entry(entry: ET.Element) -> InboxEntry | None:
    url = _link(entry)
    msgid = msgid_from_url(url) if url else None
    if not url or not msgid:
        return None
    reply = entry.find(f"{{{THREAD_NS}}}in-reply-to")
    parent = msgid_from_url(reply.get("href", "")) if reply is not None else None
    name, email = _author(entry)
    return InboxEntry(
        msgid=msgid,
        url=url,
        title=" ".join((_text(entry.find(f"{_A}title")) or "").split()),
        author_name=name,
        author_email=email,
        updated=parse_atom_date(_text(entry.find(f"{_A}updated"))),
        in_reply_to=parent,
        body=_content(entry),
    )


def _commit_sha(entry: ET.Element, url: str | None) -> str | None:
    m = _SHA_RE.match(_text(entry.find(f"{_A}id")) or "")
    if m:
        return m.group("sha").lower()
    m2 = _COMMIT_LINK_RE.search(url or "")
    return m2.group("sha").lower() if m2 else None


def _commit_entry(entry: ET.Element) -> CommitEntry | None:
    url = _link(entry)
    sha = _commit_sha(entry, url)
    if not sha:
        return None
    name, email = _author(entry)
    body = _content(entry)
    subject = " ".join((_text(entry.find(f"{_A}title")) or "").split())
    full = f"{subject}\n\n{body}" if body else subject
    return CommitEntry(
        sha=sha,
        url=url,
        subject=subject,
        author_name=name,
        author_email=email,
        updated=parse_atom_date(_text(entry.find(f"{_A}updated"))),
        published=parse_atom_date(_text(entry.find(f"{_A}published"))),
        body=body,
        trailers=parse_trailers(full),
    )


def _is_cgit(entries: list[ET.Element]) -> bool:
    return any(_SHA_RE.match(_text(e.find(f"{_A}id")) or "") for e in entries)


def _self_url(root: ET.Element) -> str | None:
    for link in root.findall(f"{_A}link"):
        if link.get("rel") == "self":
            return link.get("href")
    return None


def parse_feed(data: bytes) -> Feed:
    """Parse either kind of feed, telling them apart by their entry ids."""
    root = _root(data)
    entries = root.findall(f"{_A}entry")
    title = _text(root.find(f"{_A}title"))
    updated = parse_atom_date(_text(root.find(f"{_A}updated")))
    if not entries:
        return Feed("empty", title, updated, _self_url(root), (), (), 0)
    if _is_cgit(entries):
        commits = [c for c in (_commit_entry(e) for e in entries) if c]
        skipped = len(entries) - len(commits)
        return Feed("cgit", title, updated, _self_url(root), (), tuple(commits), skipped)
    inbox = [m for m in (_inbox_entry(e) for e in entries) if m]
    skipped = len(entries) - len(inbox)
    return Feed("public-inbox", title, updated, _self_url(root), tuple(inbox), (), skipped)


def parse_public_inbox_atom(data: bytes) -> tuple[InboxEntry, ...]:
    feed = parse_feed(data)
    if feed.kind == "cgit":
        raise SourceError("expected a public-inbox feed, got a cgit commit feed")
    return feed.inbox_entries


def parse_cgit_atom(data: bytes) -> tuple[CommitEntry, ...]:
    root = _root(data)
    commits = (_commit_entry(e) for e in root.findall(f"{_A}entry"))
    return tuple(c for c in commits if c)
