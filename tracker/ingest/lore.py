"""lore.kernel.org threads through b4 (the only module that imports b4).

b4 knows how patch series are posted: subject prefixes, cover letters, partial rerolls, trailers
in follow-ups and their carry-over between revisions. It also knows how to fetch from lore, which
tracker never lets it do: fetching is tracker.net's job, and b4 here only parses bytes it is given
(``can_network`` off, code-review lookups off, attestation off).

Nothing of b4 leaks out of this module: results are the frozen dataclasses below.

Series identity, decided here and used by :func:`series_key`:
  1. the ``change-id:`` b4 writes into cover letters, when present;
  2. otherwise the series subject (the cover letter's, else patch 1's, prefixes stripped,
     case and whitespace folded) together with the author's address;
  3. a posting with neither cover nor patch 1 is not linked to anything.
Revisions of one thread sharing a key are one :class:`SeriesInfo`.

A *posting* is one sending of a revision (a cover letter and its patches). A RESEND, or a
revision posted twice, gives two postings with the same revision number; b4 would mix their
patches in one slot list, so each posting is parsed in its own b4 mailbox.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, urlsplit

import b4

from tracker.errors import SourceError

# Trailers that reviewers give in replies and that a backport wants to carry.
COLLECTED_TRAILERS: frozenset[str] = frozenset(
    {"acked-by", "reviewed-by", "tested-by", "nacked-by", "reported-by", "suggested-by"}
)

# RFC 3986 pchar minus "/", the set public-inbox leaves unescaped in message-id paths.
_MSGID_SAFE = "-._~!$&'()*+,;=:@"
_LIST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_DIFF_START_RE = re.compile(r"^(?:diff --git |--- |Index: |GIT binary patch)", re.MULTILINE)
_SEPARATOR_RE = re.compile(r"^---[ \t]*$", re.MULTILINE)
_PREAMBLE_RULE_RE = re.compile(r"^-{10,}[ \t]*$", re.MULTILINE)
_INBODY_HEADER_RE = re.compile(r"^(From|Subject|Date):[ \t]*(.*)$")


def _configure_b4() -> None:
    """Make b4 a pure parser: no network, no attestation, no config read from git."""
    b4.can_network = False
    config = dict(b4.DEFAULT_CONFIG)
    config["attestation-policy"] = "off"
    config["attestation-check-dkim"] = "no"
    config["listid-preference"] = ["*"]
    b4.MAIN_CONFIG = config
    # b4 warns about odd threads on its logger; a library must not print.
    logging.getLogger("b4").addHandler(logging.NullHandler())


_configure_b4()


# ----------------------------------------------------------------------------------------------
# URLs


def thread_url(base: str, msgid: str) -> str:
    """The whole thread of ``msgid`` as gzip'd mboxrd: ``{base}/all/{msgid}/t.mbox.gz``."""
    return f"{_clean_base(base)}/all/{quote_msgid(msgid)}/t.mbox.gz"


def search_url(base: str, list_name: str, query: str, *, mbox: bool = False) -> str:
    """A public-inbox search of ``list_name`` (use ``all`` for every list).

    Default: ``?q=<query>&x=A``, the results as an Atom feed, fetched with GET; a poller uses it
    as a trigger and then fetches each thread. With ``mbox=True``: ``?q=<query>&x=m``, the
    matching messages as gzip'd mbox, which public-inbox only serves to a POST
    (``Fetcher.post``); a GET of it returns an HTML page.
    """
    if not _LIST_RE.match(list_name):
        raise SourceError(f"invalid list name {list_name!r}")
    if not query.strip():
        raise SourceError("empty search query")
    fmt = "m" if mbox else "A"
    return f"{_clean_base(base)}/{list_name}/?q={quote(query, safe='')}&x={fmt}"


def quote_msgid(msgid: str) -> str:
    """Percent-encode a message-id for a URL path; ``/`` and ``%`` are always escaped."""
    bare = msgid.strip().removeprefix("<").removesuffix(">")
    if not bare or any(ch.isspace() or ord(ch) < 0x20 or ch in "<>" for ch in bare):
        raise SourceError(f"invalid Message-ID {msgid!r}")
    return quote(bare, safe=_MSGID_SAFE)


def _clean_base(base: str) -> str:
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"lore base must be an http(s) URL, got {base!r}")
    return base.rstrip("/")


# ----------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class MessageInfo:
    """One message of the thread, whatever its role."""

    msgid: str
    subject: str
    from_name: str
    from_email: str
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]


@dataclass(frozen=True)
class TrailerInfo:
    """A trailer given in a reply: ``name`` as written, ``who`` parsed from its value.

    ``carried_over`` is True when the reply was to an earlier revision and b4 carried the
    trailer forward because the patch (its git patch-id) did not change.
    """

    name: str
    value: str
    who_name: str
    who_email: str
    note: str | None
    source_msgid: str
    carried_over: bool


@dataclass(frozen=True)
class PatchInfo:
    """One patch of a posting: ``message`` is the commit message (with its own trailers)."""

    msgid: str
    index: int
    subject: str
    author_name: str
    author_email: str
    date: datetime | None
    message: str
    diff: str
    patch_id: str | None
    trailers: tuple[TrailerInfo, ...]


@dataclass(frozen=True)
class SeriesRevision:
    """One posting of one revision of a series."""

    revision: int
    subject: str
    author_name: str
    author_email: str
    expected: int
    has_cover: bool
    cover_msgid: str | None
    complete: bool
    resend: bool
    partial_reroll: bool
    root_msgid: str
    date: datetime | None
    change_id: str | None
    base_commit: str | None
    patches: tuple[PatchInfo, ...]
    missing: tuple[int, ...]
    cover_trailers: tuple[TrailerInfo, ...]

    def patch(self, index: int) -> PatchInfo:
        for item in self.patches:
            if item.index == index:
                return item
        raise KeyError(f"v{self.revision} has no patch {index}")


@dataclass(frozen=True)
class SeriesInfo:
    """Every revision found of one series, oldest first; ``key`` is its identity."""

    key: str
    subject: str
    revisions: tuple[SeriesRevision, ...]

    @property
    def latest(self) -> SeriesRevision:
        return self.revisions[-1]

    def revision(self, number: int) -> tuple[SeriesRevision, ...]:
        return tuple(r for r in self.revisions if r.revision == number)


@dataclass(frozen=True)
class ThreadInfo:
    """A parsed thread; ``skipped`` counts messages dropped (no Message-ID, or a duplicate)."""

    messages: tuple[MessageInfo, ...]
    series: tuple[SeriesInfo, ...]
    skipped: int

    def message(self, msgid: str) -> MessageInfo:
        for item in self.messages:
            if item.msgid == msgid:
                return item
        raise KeyError(msgid)


def series_key(subject: str, author_email: str, change_id: str | None = None) -> str:
    """The identity used to link revisions (see the module docstring)."""
    if change_id:
        return f"change-id:{change_id.strip()}"
    folded = " ".join(subject.split()).lower()
    return f"subject:{folded}|{author_email.strip().lower()}"


# ----------------------------------------------------------------------------------------------
# Parsing


def parse_thread(mbox: bytes) -> ThreadInfo:
    """Parse a lore thread (mboxrd, or its gzip as served) into messages and series."""
    raw_msgs = _split(mbox)
    lmsgs = _load(raw_msgs)
    messages = tuple(_message_info(info) for info in lmsgs)
    postings = _postings(lmsgs)
    parents = {m.msgid: m.in_reply_to for m in messages}
    revisions = [_parse_posting(p, postings, lmsgs, parents) for p in postings]
    found = [r for r in revisions if r is not None]
    return ThreadInfo(
        messages=messages,
        series=_link(found),
        skipped=len(raw_msgs) - len(lmsgs),
    )


def _split(mbox: bytes) -> list[EmailMessage]:
    if mbox.startswith(b"\x1f\x8b"):
        try:
            mbox = gzip.decompress(mbox)
        except (EOFError, OSError, zlib.error) as err:
            raise SourceError(f"truncated gzip in thread mbox: {err}") from err
    try:
        msgs: list[EmailMessage] = list(b4.mailsplit_bytes(mbox))
    except Exception as err:  # b4/liblore raise assorted errors on garbage input
        raise SourceError(f"cannot split mbox: {err}") from err
    return msgs


@dataclass(frozen=True)
class _Loaded:
    """What tracker needs of one b4 LoreMessage, typed."""

    msg: EmailMessage
    msgid: str
    subject: str
    full_subject: str
    from_name: str
    from_email: str
    in_reply_to: str | None
    references: tuple[str, ...]
    reply: bool
    revision: int
    revision_inferred: bool
    counter: int
    expected: int
    resend: bool
    role: str  # "cover", "patch", "followup" or "other"


def _load(msgs: Sequence[EmailMessage]) -> list[_Loaded]:
    seen: set[str] = set()
    out: list[_Loaded] = []
    for msg in msgs:
        try:
            lmsg = b4.LoreMessage(msg)
        except ValueError:
            continue  # no usable Message-ID: cannot be threaded or stored
        loaded = _typed(msg, lmsg)
        if loaded.msgid in seen:
            continue
        seen.add(loaded.msgid)
        out.append(loaded)
    return out


def _typed(msg: EmailMessage, lmsg: Any) -> _Loaded:
    return _Loaded(
        msg=msg,
        msgid=str(lmsg.msgid),
        subject=str(lmsg.subject),
        full_subject=str(lmsg.full_subject),
        from_name=str(lmsg.fromname),
        from_email=str(lmsg.fromemail),
        in_reply_to=_opt_str(lmsg.in_reply_to),
        references=tuple(str(r) for r in lmsg.references),
        reply=bool(lmsg.reply),
        revision=int(lmsg.revision),
        revision_inferred=bool(lmsg.revision_inferred),
        counter=int(lmsg.counter),
        expected=int(lmsg.expected),
        resend=bool(lmsg.lsubject.resend),
        role=_role(lmsg),
    )


def _role(lmsg: Any) -> str:
    # Mirrors LoreMailbox.add_message so postings are cut where b4 would file them.
    if lmsg.reply:
        return "followup"
    if int(lmsg.counter) == 0 and (not lmsg.counters_inferred or lmsg.has_diffstat):
        return "cover"
    if lmsg.has_diff:
        return "patch"
    return "other"


def _message_info(info: _Loaded) -> MessageInfo:
    return MessageInfo(
        msgid=info.msgid,
        subject=info.full_subject,
        from_name=info.from_name,
        from_email=info.from_email,
        date=_date(info.msg),
        in_reply_to=info.in_reply_to,
        references=info.references,
    )


# --- postings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Posting:
    root: str
    revision: int
    members: tuple[str, ...]
    first_seen: int


def _postings(lmsgs: Sequence[_Loaded]) -> list[_Posting]:
    by_id = {info.msgid: info for info in lmsgs}
    groups: dict[tuple[str, int], list[str]] = {}
    order: dict[tuple[str, int], int] = {}
    for pos, info in enumerate(lmsgs):
        if info.role not in ("cover", "patch"):
            continue
        # Keyed with the revision too: v2 and v3 may both answer the same absent v1 cover.
        key = _posting_root(info, by_id)
        groups.setdefault(key, []).append(info.msgid)
        order.setdefault(key, pos)
    return [
        _Posting(root=root, revision=rev, members=tuple(ms), first_seen=order[(root, rev)])
        for (root, rev), ms in groups.items()
    ]


def _posting_root(info: _Loaded, by_id: Mapping[str, _Loaded]) -> tuple[str, int]:
    """Walk up In-Reply-To while the parent belongs to the same sending of the series."""
    node = info
    revision = info.revision
    seen = {node.msgid}
    while node.in_reply_to is not None:
        parent = by_id.get(node.in_reply_to)
        if parent is None:
            # The cover is not in this mbox: its msgid still ties the patches together.
            return (node.msgid if node.role == "cover" else f"<{node.in_reply_to}>", revision)
        if parent.msgid in seen or not _same_posting(node, parent):
            break
        if node.revision_inferred:
            revision = parent.revision
        seen.add(parent.msgid)
        node = parent
    return node.msgid, (node.revision if not node.revision_inferred else revision)


def _same_posting(child: _Loaded, parent: _Loaded) -> bool:
    if parent.role not in ("cover", "patch"):
        return False
    same_rev = child.revision == parent.revision or child.revision_inferred
    return same_rev and child.expected == parent.expected and child.resend == parent.resend


def _mailbox_for(
    posting: _Posting,
    postings: Sequence[_Posting],
    lmsgs: Sequence[_Loaded],
) -> list[EmailMessage]:
    """This posting, one posting of every other revision (for b4's carry-over), all replies."""
    keep = set(posting.members)
    for rev in {p.revision for p in postings} - {posting.revision}:
        same = [p for p in postings if p.revision == rev]
        keep.update(max(same, key=lambda p: (len(p.members), p.first_seen)).members)
    return [info.msg for info in lmsgs if info.msgid in keep or info.role == "followup"]


def _parse_posting(
    posting: _Posting,
    postings: Sequence[_Posting],
    lmsgs: Sequence[_Loaded],
    parents: Mapping[str, str | None],
) -> SeriesRevision | None:
    mailbox = b4.LoreMailbox()
    for msg in _mailbox_for(posting, postings, lmsgs):
        mailbox.add_message(msg)
    lser = mailbox.get_series(posting.revision, codereview_trailers=False)
    if lser is None:
        return None
    members = _series_members(lser)
    return _revision(lser, posting, members, parents, {info.msgid: info.msg for info in lmsgs})


def _series_members(lser: Any) -> set[str]:
    return {str(lmsg.msgid) for lmsg in lser.patches if lmsg is not None}


# --- conversion -------------------------------------------------------------------------------


def _revision(
    lser: Any,
    posting: _Posting,
    members: set[str],
    parents: Mapping[str, str | None],
    raw: Mapping[str, EmailMessage],
) -> SeriesRevision:
    slots: list[Any] = list(lser.patches)
    cover = slots[0]
    patches = tuple(
        _patch(lmsg, idx, members, parents, raw)
        for idx, lmsg in enumerate(slots)
        if idx > 0 and lmsg is not None
    )
    first = cover if cover is not None else next((p for p in slots[1:] if p is not None), None)
    resend = bool(first.lsubject.resend) if first is not None else False
    return SeriesRevision(
        revision=int(lser.revision),
        subject=_series_subject(lser, slots),
        author_name=str(lser.fromname or ""),
        author_email=str(lser.fromemail or ""),
        expected=int(lser.expected),
        has_cover=bool(lser.has_cover),
        cover_msgid=str(cover.msgid) if cover is not None else None,
        complete=bool(lser.complete),
        resend=resend,
        partial_reroll=bool(lser.partial_reroll),
        root_msgid=posting.root,
        date=_date(raw[str(first.msgid)]) if first is not None else None,
        change_id=_opt_str(lser.change_id),
        base_commit=_opt_str(lser.base_commit),
        patches=patches,
        missing=tuple(idx for idx, lmsg in enumerate(slots) if idx > 0 and lmsg is None),
        cover_trailers=_trailers(cover, members, parents) if cover is not None else (),
    )


def _series_subject(lser: Any, slots: Sequence[Any]) -> str:
    # b4 leaves "(untitled)" when neither the cover nor patch 1 arrived.
    if slots[0] is None and (len(slots) < 2 or slots[1] is None):
        return ""
    return str(lser.subject)


def _patch(
    lmsg: Any,
    index: int,
    members: set[str],
    parents: Mapping[str, str | None],
    raw: Mapping[str, EmailMessage],
) -> PatchInfo:
    body = str(lmsg.body)
    message, diff, inbody = split_patch_body(body)
    name, addr = str(lmsg.fromname), str(lmsg.fromemail)
    if "from" in inbody:
        parsed_name, parsed_addr = email.utils.parseaddr(inbody["from"])
        if parsed_addr:
            name, addr = parsed_name or parsed_addr, parsed_addr
    msgid = str(lmsg.msgid)
    return PatchInfo(
        msgid=msgid,
        index=index,
        subject=str(lmsg.subject),
        author_name=name,
        author_email=addr,
        date=_date(raw[msgid]) if msgid in raw else None,
        message=message,
        diff=diff,
        patch_id=_opt_str(lmsg.git_patch_id),
        trailers=_trailers(lmsg, members, parents),
    )


def _trailers(
    lmsg: Any, members: set[str], parents: Mapping[str, str | None]
) -> tuple[TrailerInfo, ...]:
    out: list[TrailerInfo] = []
    seen: set[tuple[str, str, str]] = set()
    for ltr in lmsg.followup_trailers:
        name = str(ltr.name)
        if name.lower() not in COLLECTED_TRAILERS or ltr.addr is None:
            continue
        source = str(ltr.lmsg.msgid) if ltr.lmsg is not None else ""
        who_name, who_email = str(ltr.addr[0]), str(ltr.addr[1])
        key = (name.lower(), who_email.lower(), source)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            TrailerInfo(
                name=name,
                value=str(ltr.value),
                who_name=who_name,
                who_email=who_email,
                note=_note(ltr.extinfo),
                source_msgid=source,
                carried_over=not _replies_to(source, members, parents),
            )
        )
    return tuple(out)


def _replies_to(msgid: str, members: set[str], parents: Mapping[str, str | None]) -> bool:
    """Is ``msgid`` (transitively) a reply to one of ``members``?"""
    seen: set[str] = set()
    node: str | None = parents.get(msgid)
    while node is not None and node not in seen:
        if node in members:
            return True
        seen.add(node)
        node = parents.get(node)
    return False


def _note(extinfo: object) -> str | None:
    if extinfo is None:
        return None
    text = str(extinfo).strip().lstrip("#").strip()
    return text or None


def split_patch_body(body: str) -> tuple[str, str, dict[str, str]]:
    """Split a patch mail body into (commit message, diff, in-body headers).

    The commit message keeps its trailers. A stable-review preamble ("X-stable review patch"
    then a rule of dashes) is dropped so the in-body ``From:`` after it is found.
    """
    text = body.replace("\r\n", "\n")
    text = text.rsplit("\n-- \n", 1)[0]
    text = _drop_preamble(text)
    head, diff = _cut_diff(text)
    headers, message = _inbody_headers(head.strip("\n"))
    return message.strip("\n") + "\n" if message.strip() else "", diff, headers


def _drop_preamble(text: str) -> str:
    rule = _PREAMBLE_RULE_RE.search(text, 0, 400)
    if rule is None or "review patch" not in text[: rule.start()]:
        return text
    return text[rule.end() :].lstrip("\n")


def _cut_diff(text: str) -> tuple[str, str]:
    sep = _SEPARATOR_RE.search(text)
    if sep is not None:
        rest = text[sep.end() :]
        start = _DIFF_START_RE.search(rest)
        return text[: sep.start()], rest[start.start() :] if start else ""
    start = _DIFF_START_RE.search(text)
    if start is None:
        return text, ""
    return text[: start.start()], text[start.start() :]


def _inbody_headers(text: str) -> tuple[dict[str, str], str]:
    first, _, rest = text.partition("\n\n")
    found: dict[str, str] = {}
    for line in first.split("\n"):
        match = _INBODY_HEADER_RE.match(line)
        if match is None:
            return {}, text
        found[match.group(1).lower()] = match.group(2).strip()
    return found, rest


# --- linking ------------------------------------------------------------------------------------


def _link(revisions: Iterable[SeriesRevision]) -> tuple[SeriesInfo, ...]:
    """Group revisions into series: union of change-id matches and subject/author matches."""
    revs = list(revisions)
    parent = list(range(len(revs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, rev in enumerate(revs):
        for key in _keys(rev):
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[SeriesRevision]] = {}
    for i, rev in enumerate(revs):
        groups.setdefault(find(i), []).append(rev)
    return tuple(_series(members) for members in groups.values())


def _keys(rev: SeriesRevision) -> list[str]:
    keys = [f"posting:{rev.root_msgid}"]
    if rev.change_id:
        keys.append(series_key("", "", rev.change_id))
    if rev.subject:
        keys.append(series_key(rev.subject, rev.author_email))
    return keys


def _series(members: list[SeriesRevision]) -> SeriesInfo:
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = tuple(sorted(members, key=lambda r: (r.revision, r.date or epoch)))
    latest = ordered[-1]
    change_id = next((r.change_id for r in ordered if r.change_id), None)
    if change_id or latest.subject:
        key = series_key(latest.subject, latest.author_email, change_id)
    else:
        key = f"posting:{latest.root_msgid}"
    return SeriesInfo(key=key, subject=latest.subject, revisions=ordered)


# --- small helpers ------------------------------------------------------------------------------


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _date(msg: EmailMessage) -> datetime | None:
    value = msg.get("Date")
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
