"""Parse the references a commit message or patch mail makes to other commits and messages.

Pure functions over text. Nothing here touches git: shas are returned exactly as written (lower
cased) and validated as hex, so a value such as ``--upload-pack=x`` can never become a revision.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote

HEX_RE = re.compile(r"^[0-9a-f]{4,64}$")

# Kernel convention is 12+ characters, but real tags carry 7..40; anything shorter is noise.
_SHA = r"[0-9a-fA-F]{7,40}"

DEFAULT_UPSTREAM_PATTERNS: tuple[str, ...] = (
    r"^commit (?P<sha>[0-9a-f]{40}) upstream\.?\s*$",
    r"^\[\s*[Uu]pstream commit (?P<sha>[0-9a-f]{40})\s*\]\s*$",
)

_FIXES_RE = re.compile(r"^\s*Fixes:\s*(?P<rest>.*)$", re.IGNORECASE | re.MULTILINE)
_FIXES_VALUE_RE = re.compile(
    r"^(?:commit\s+)?(?P<sha>\S+?)(?:\s+\(\s*\"?(?P<subject>.*?)\"?\s*\))?\s*$"
)
_FIXES_AGAIN_RE = re.compile(r"^Fixes:\s*", re.IGNORECASE)
_FIXES_SHA_RE = re.compile(r"^(?:commit\s+)?(?P<sha>[0-9a-fA-F]{7,40})(?P<punct>[.,;:]?)(?:\s+|$)")
# A line that starts another trailer ends a wrapped Fixes: subject.
_TRAILER_START_RE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9-]*:\s")
_WRAP_LINES = 3
_STABLE_DEP_RE = re.compile(
    r"^\s*Stable-dep-of:\s*(?P<sha>\S+)(?:\s+\(\s*\"?(?P<subject>.*?)\"?\s*\))?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_LINK_RE = re.compile(r"^\s*(?:Link|Closes):\s*(?P<url>\S+)", re.IGNORECASE | re.MULTILINE)
_MSGID_TRAILER_RE = re.compile(
    r"^\s*Message-ID:\s*<?(?P<msgid>[^<>\s]+@[^<>\s]+)>?\s*$", re.IGNORECASE | re.MULTILINE
)
# The kernel's stable list; other projects name their own in [trailers] stable_list.
DEFAULT_STABLE_LIST = r"stable(?:\+[\w.-]+)?@(?:vger\.)?kernel\.org"


@functools.lru_cache(maxsize=8)
def _cc_stable_re(address: str) -> re.Pattern[str]:
    return re.compile(
        r"^\s*Cc:\s*(?:[^<\n]*<)?(?P<addr>" + address + r")>?\s*(?:#\s*(?P<note>.*?))?\s*$",
        re.IGNORECASE | re.MULTILINE,
    )


_REVERT_RE = re.compile(
    r"This reverts commit (?P<sha>" + _SHA + r")"
    r"(?:[\s.,]+which is\s+commit (?P<upstream>[0-9a-fA-F]{40}) upstream)?",
    re.IGNORECASE,
)
_CHERRY_RE = re.compile(r"\(cherry picked from commit (?P<sha>" + _SHA + r")\)", re.IGNORECASE)
_VERSION_RE = re.compile(r"v?(?P<major>\d+)\.(?P<minor>\d+)")
_PREREQ_NOTE_RE = re.compile(r":\s*(?P<sha>[0-9a-fA-F]{7,40})\s*:\s*(?P<subject>.+)$")

_LINK_MSGID_RES = (
    re.compile(r"^https?://lore\.kernel\.org/(?:r|all|[\w.-]+)/(?P<msgid>[^/\s]+@[^/\s]+?)/?$"),
    re.compile(r"^https?://lkml\.kernel\.org/r/(?P<msgid>[^/\s]+@[^/\s]+?)/?$"),
    re.compile(r"^https?://(?:patch\.)?msgid\.link/(?P<msgid>[^/\s]+@[^/\s]+?)/?$"),
    re.compile(r"^https?://patchwork\.[\w.-]+/patch/msgid/(?P<msgid>[^/\s]+@[^/\s]+?)/?$"),
)


@dataclass(frozen=True)
class ShaRef:
    """A reference to a commit as written: ``sha`` is lower-cased, ``valid`` says it is hex."""

    sha: str
    subject: str | None
    raw: str
    # How a malformed tag was read (``Fixes: Fixes: X``, a subject wrapped onto the next line,
    # quotes without parentheses...), or None when it was written in the usual form.
    repair: str | None = None

    @property
    def valid(self) -> bool:
        return bool(HEX_RE.match(self.sha))


@dataclass(frozen=True)
class StableNomination:
    """A ``Cc: stable`` line; its ``# ...`` note narrows branches or names prerequisites."""

    address: str
    note: str | None
    min_version: tuple[int, int] | None
    prerequisite: ShaRef | None
    noautosel: bool


@dataclass(frozen=True)
class Trailers:
    fixes: tuple[ShaRef, ...] = ()
    upstream: str | None = None
    upstream_rule: str | None = None
    stable_dep_of: tuple[ShaRef, ...] = ()
    links: tuple[str, ...] = ()
    link_msgids: tuple[str, ...] = ()
    cc_stable: tuple[StableNomination, ...] = ()
    reverts: tuple[str, ...] = ()
    reverts_upstream: tuple[str, ...] = ()
    cherry_picked_from: tuple[str, ...] = ()
    invalid: tuple[str, ...] = field(default=())


def msgid_from_link(url: str) -> str | None:
    """The Message-ID a lore-style link points at, or None for any other URL."""
    url = url.strip().rstrip(">").lstrip("<")
    for rx in _LINK_MSGID_RES:
        m = rx.match(url)
        if m:
            # lore percent-encodes characters such as '/' in message ids; keep the id as sent.
            return unquote(m.group("msgid")).strip("<>")
    return None


def _sha_ref(raw_sha: str, subject: str | None, raw: str, repair: str | None = None) -> ShaRef:
    return ShaRef(
        sha=raw_sha.strip().lower(), subject=(subject or None), raw=raw.strip(), repair=repair
    )


def _continuation(message: str, end: int) -> list[str]:
    """The lines after a Fixes: line that may carry the rest of its wrapped subject."""
    out: list[str] = []
    for line in message[end:].split("\n", _WRAP_LINES + 1)[1 : _WRAP_LINES + 1]:
        if not line.strip() or _TRAILER_START_RE.match(line):
            break
        out.append(line.strip())
    return out


def _unquote(text: str) -> str:
    return text.strip().strip('"').strip()


def _fixes_ref(rest: str, message: str, end: int, raw: str) -> ShaRef | None:
    """A Fixes: value in the usual ``<sha> ("<subject>")`` form, or repaired from the malformed
    forms seen in real mail; None when no commit id can be read from it."""
    repairs: list[str] = []
    if _FIXES_AGAIN_RE.match(rest):
        rest = _FIXES_AGAIN_RE.sub("", rest, count=1)
        repairs.append("'Fixes:' written twice")
    usual = _FIXES_VALUE_RE.match(rest)
    if usual and not repairs and HEX_RE.match(usual.group("sha").lower()):
        return _sha_ref(usual.group("sha"), usual.group("subject"), raw)
    m = _FIXES_SHA_RE.match(rest)
    if m is None:
        # Not a commit id in any form: kept as written (and reported invalid) when it has the
        # usual shape, so a value such as ``--upload-pack=x`` stays visible.
        if usual:
            how = "; ".join(repairs) or None
            return _sha_ref(usual.group("sha"), usual.group("subject"), raw, how)
        return None
    if m.group("punct"):
        repairs.append(f"'{m.group('punct')}' after the commit id")
    after = rest[m.end() :].strip()
    subject: str | None = None
    if after.startswith("("):
        inner = after[1:].strip()
        close = '")' if inner.startswith('"') else ")"
        if not inner.endswith(close):
            joined = inner
            for n, line in enumerate(_continuation(message, end), 1):
                joined = f"{joined} {line}"
                if joined.endswith(close):
                    inner = joined
                    repairs.append(f"subject wrapped onto {n} more line{'s' if n > 1 else ''}")
                    break
            else:
                repairs.append("closing parenthesis missing")
        subject = _unquote(inner.removesuffix(")"))
    elif after.startswith('"'):
        subject = _unquote(after)
        repairs.append("quoted subject without parentheses")
    elif after:
        subject = _unquote(after)
        repairs.append("subject without quotes or parentheses")
    return _sha_ref(m.group("sha"), subject or None, raw, "; ".join(repairs) or None)


def parse_version_note(note: str) -> tuple[int, int] | None:
    m = _VERSION_RE.search(note)
    if not m:
        return None
    return int(m.group("major")), int(m.group("minor"))


def _nomination(addr: str, note: str | None) -> StableNomination:
    prereq = None
    min_version = None
    if note:
        p = _PREREQ_NOTE_RE.search(note)
        if p:
            prereq = _sha_ref(p.group("sha"), p.group("subject").strip(), note)
        min_version = parse_version_note(note.split(":", 1)[0])
    return StableNomination(
        address=addr.lower(),
        note=note or None,
        min_version=min_version,
        prerequisite=prereq,
        noautosel="noautosel" in addr.lower(),
    )


@lru_cache(maxsize=16)
def _compile_cached(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.MULTILINE) for p in patterns)


def _compile(patterns: Sequence[str]) -> Sequence[re.Pattern[str]]:
    # Called once per commit during a sync: compiling every time cost a minute at 1M commits.
    return _compile_cached(tuple(patterns))


_DEFAULT_COMPILED = _compile(DEFAULT_UPSTREAM_PATTERNS)


def _line_of_first(message: str, low: str, first: int) -> int:
    """Where the line holding offset ``first`` of ``low`` starts: a trailer pattern anchored
    at line starts is tried at every character by ``re``, so it runs from there. ``low`` is
    ``message`` lower-cased; where that changed its length (a few non-ASCII letters do),
    offsets in one are not offsets in the other: from 0 then."""
    if len(low) != len(message):
        return 0
    return message.rfind("\n", 0, first) + 1


def parse_trailers(
    message: str,
    upstream_patterns: Sequence[str] | None = None,
    stable_list: str = DEFAULT_STABLE_LIST,
) -> Trailers:
    """Extract every reference from a commit message or the body of a patch mail.

    ``stable_list`` is a regex for the stable list's address (``Cc: <addr> # note``)."""
    compiled = _DEFAULT_COMPILED if upstream_patterns is None else _compile(upstream_patterns)
    invalid: list[str] = []
    # Each pattern runs only where its keyword occurs: a mail body is ten kilobytes of prose
    # and diff, and scanning it once per pattern cost more than parsing the mail.
    low = message.lower()

    fixes: list[ShaRef] = []
    for m in _FIXES_RE.finditer(message) if "fixes:" in low else ():
        rest = m.group("rest").strip()
        ref = _fixes_ref(rest, message, m.end(), m.group(0))
        if ref is None:
            invalid.append(f"Fixes: {rest}")
            continue
        if not ref.valid:
            invalid.append(f"Fixes: {rest}")
        fixes.append(ref)

    reverts: list[str] = []
    reverts_upstream: list[str] = []
    revert_spans: list[tuple[int, int]] = []
    for m in _REVERT_RE.finditer(message) if "reverts commit" in low else ():
        reverts.append(m.group("sha").lower())
        if m.group("upstream"):
            reverts_upstream.append(m.group("upstream").lower())
        revert_spans.append(m.span())

    # A stable-only revert says "which is\ncommit X upstream." about the *reverted* commit, so
    # upstream lines inside a revert sentence are not this commit's own upstream reference.
    upstream: str | None = None
    upstream_rule: str | None = None
    # Configured patterns may say anything; the default ones all say "upstream".
    skip_upstream = compiled is _DEFAULT_COMPILED and "upstream" not in low
    for idx, rx in enumerate(() if skip_upstream else compiled):
        for m in rx.finditer(message):
            if any(a <= m.start() < b for a, b in revert_spans):
                continue
            sha = m.group("sha").lower()
            if HEX_RE.match(sha):
                upstream = sha
                upstream_rule = f"upstream-pattern-{idx}"
                break
        if upstream:
            break

    deps: list[ShaRef] = []
    for m in _STABLE_DEP_RE.finditer(message) if "stable-dep-of:" in low else ():
        ref = _sha_ref(m.group("sha"), m.group("subject"), m.group(0))
        if not ref.valid:
            invalid.append(m.group(0).strip())
        deps.append(ref)

    links: list[str] = []
    msgids: list[str] = []
    # (Written out rather than as generators: this runs once per commit of a history.)
    link, closes = low.find("link:"), low.find("closes:")
    if link >= 0 or closes >= 0:
        first = link if closes < 0 else closes if link < 0 else min(link, closes)
        for m in _LINK_RE.finditer(message, _line_of_first(message, low, first)):
            url = m.group("url")
            links.append(url)
            msgid = msgid_from_link(url)
            if msgid and msgid not in msgids:
                msgids.append(msgid)
    if "message-id:" in low:
        for m in _MSGID_TRAILER_RE.finditer(message):
            if m.group("msgid") not in msgids:
                msgids.append(m.group("msgid"))

    noms: tuple[StableNomination, ...] = ()
    if "stable" in low or stable_list is not DEFAULT_STABLE_LIST:
        noms = tuple(
            _nomination(m.group("addr"), m.group("note"))
            for m in _cc_stable_re(stable_list).finditer(message)
        )
    cherry: tuple[str, ...] = ()
    if "cherry picked" in low:
        cherry = tuple(m.group("sha").lower() for m in _CHERRY_RE.finditer(message))

    if not (fixes or upstream or deps or links or msgids or noms or reverts or cherry or invalid):
        return _NONE  # most commits of a history: no tuples, no dataclass to build
    return Trailers(
        fixes=tuple(fixes),
        upstream=upstream,
        upstream_rule=upstream_rule,
        stable_dep_of=tuple(deps),
        links=tuple(links),
        link_msgids=tuple(msgids),
        cc_stable=noms,
        reverts=tuple(reverts),
        reverts_upstream=tuple(reverts_upstream),
        cherry_picked_from=cherry,
        invalid=tuple(invalid),
    )


_NONE = Trailers()
