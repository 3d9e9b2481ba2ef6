"""Parse RFC 5322 messages and mbox archives as lore and mailing lists serve them.

Decisions:

* The stdlib parser runs with ``policy.compat32``: the ``policy.default`` header registry raises
  on some malformed headers seen in list archives, while compat32 never does and leaves decoding
  to us (RFC 2047, 8-bit headers, charsets), which is done here defensively.
* A mail without a usable Message-ID gets a synthetic, deterministic id
  ``<sha1 of the raw bytes>@synthetic.tracker.invalid`` and ``msgid_synthetic=True``: dropping
  it would lose data, and the hash keeps re-ingesting the same archive idempotent. Consumers that
  need a real id (threading, lore links) check the flag.
* A body is decoded with the declared charset, but bytes that are valid UTF-8 are read as UTF-8
  first: lists are full of UTF-8 bodies declared as us-ascii (``ANSI_X3.4-1968``) or latin-1, and
  valid multi-byte UTF-8 is vanishingly rare in genuine 8-bit text. Undecodable bytes become
  U+FFFD rather than errors.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.utils
import gzip
import hashlib
import io
import quopri
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32

from tracker.errors import SourceError

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
SYNTHETIC_MSGID_DOMAIN = "synthetic.tracker.invalid"

_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_REPLY_RE = re.compile(r"^\s*(?:re|fwd?|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*", re.IGNORECASE)
_BRACKET_RE = re.compile(r"^\s*\[([^\[\]]*)\]\s*")
_VERSION_RE = re.compile(r"^v(\d{1,4})$", re.IGNORECASE)
_COUNTER_RE = re.compile(r"^(\d{1,5})/(\d{1,5})$")
_BRANCH_RE = re.compile(r"^(?:linux-)?(\d{1,2})\.(\d{1,3})(?:\.(\d{1,4}))?(\.y)?$", re.IGNORECASE)
_HEADER_LINE_RE = re.compile(rb"^[!-9;-~]+:")
_MBOXRD_ESCAPED_RE = re.compile(rb"^>+From ")
_HTML_START_RE = re.compile(rb"^\s*(?:<!doctype\s+html|<html|<head|<body|<\?xml)", re.IGNORECASE)
_ASCII_CHARSETS = frozenset(
    {"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "646", "latin-1", "latin1", "iso-8859-1"}
)
_UNICODE_WIDE = ("utf-16", "utf-32", "utf_16", "utf_32")
_TZ_ABBREV = {
    "UT": 0,
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "WET": 0,
    "BST": 60,
    "CET": 60,
    "CEST": 120,
    "EET": 120,
    "EEST": 180,
    "MSK": 180,
    "IST": 330,
    "CST": -360,
    "CDT": -300,
    "EST": -300,
    "EDT": -240,
    "MST": -420,
    "MDT": -360,
    "PST": -480,
    "PDT": -420,
    "JST": 540,
    "KST": 540,
    "AEST": 600,
    "AEDT": 660,
    "NZST": 720,
    "NZDT": 780,
}


@dataclass(frozen=True)
class SubjectTags:
    """What the bracketed prefixes of a patch subject say.

    ``[PATCH RFC v3 2/7] foo`` -> prefixes ("PATCH", "RFC"), version 3, index 2, total 7.
    ``[PATCH 6.12 093/393] foo`` -> stable_branch "6.12"; ``[PATCH 6.1.y] foo`` -> "6.1" with
    ``branch_suffix_y`` True (a backport submission rather than a review patch).
    """

    prefixes: tuple[str, ...]
    version: int | None
    index: int | None
    total: int | None
    stable_branch: str | None
    branch_suffix_y: bool
    counter_width: int | None
    is_reply: bool
    subject: str

    @property
    def autosel(self) -> bool:
        return any(p.upper() == "AUTOSEL" for p in self.prefixes)

    @property
    def is_patch(self) -> bool:
        return any(p.upper().startswith("PATCH") for p in self.prefixes)

    @property
    def is_cover(self) -> bool:
        return self.index == 0


@dataclass(frozen=True)
class Mail:
    """One parsed message. ``date`` is timezone-aware (UTC assumed when the header has no zone)."""

    msgid: str
    msgid_synthetic: bool
    subject: str
    from_name: str | None
    from_email: str | None
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    list_id: str | None
    # Raw (undecoded) To:/Cc: fields; the addresses are read from them only when asked for.
    to_header: str | None
    cc_header: str | None
    x_stable: str | None
    x_stable_base: str | None
    x_patchwork_hint: str | None
    user_agent: str | None
    body: str
    charset: str | None

    @property
    def tags(self) -> SubjectTags:
        return parse_subject(self.subject)

    @property
    def to(self) -> tuple[str, ...]:
        return addresses(self.to_header)

    @property
    def cc(self) -> tuple[str, ...]:
        return addresses(self.cc_header)

    def addressed_to(self, *wanted: str) -> bool:
        """Whether To: or Cc: names one of these (lower-case) addresses. Most mail names none
        of them in any form, which a substring test tells without parsing the lists."""
        raw = f"{self.to_header or ''}\n{self.cc_header or ''}".lower()
        if not any(w in raw for w in wanted):
            return False
        return any(a in wanted for a in (*self.to, *self.cc))

    @property
    def parent(self) -> str | None:
        """The message this one answers: In-Reply-To, else the last of References."""
        if self.in_reply_to:
            return self.in_reply_to
        return self.references[-1] if self.references else None


# --------------------------------------------------------------------------------------------
# Subjects


def _branch_of(token: str) -> tuple[str, bool] | None:
    m = _BRANCH_RE.match(token)
    if not m:
        return None
    major, minor, patch, dot_y = m.groups()
    # 2.6.32 and 3.x.y era names need the third component to name a tree.
    branch = f"{major}.{minor}.{patch}" if major == "2" and patch else f"{major}.{minor}"
    return branch, bool(dot_y)


def _apply_token(token: str, acc: dict[str, object], prefixes: list[str]) -> None:
    if acc["version"] is None and (m := _VERSION_RE.match(token)):
        acc["version"] = int(m.group(1))
        return
    if acc["index"] is None and (m := _COUNTER_RE.match(token)):
        acc["index"], acc["total"] = int(m.group(1)), int(m.group(2))
        acc["width"] = len(m.group(1))
        return
    if acc["branch"] is None and (b := _branch_of(token)):
        acc["branch"], acc["dot_y"] = b
        return
    prefixes.append(token)


def parse_subject(subject: str) -> SubjectTags:
    """Split reply prefixes and leading ``[...]`` tag groups from a subject. Never raises."""
    text = " ".join(subject.split())
    is_reply = False
    prefixes: list[str] = []
    acc: dict[str, object] = {
        "version": None,
        "index": None,
        "total": None,
        "width": None,
        "branch": None,
        "dot_y": False,
    }
    while True:
        m = _REPLY_RE.match(text)
        if m:
            is_reply = True
            text = text[m.end() :]
            continue
        b = _BRACKET_RE.match(text)
        if b:
            for token in b.group(1).replace(",", " ").split():
                _apply_token(token, acc, prefixes)
            text = text[b.end() :]
            continue
        break
    return SubjectTags(
        prefixes=tuple(prefixes),
        version=acc["version"] if isinstance(acc["version"], int) else None,
        index=acc["index"] if isinstance(acc["index"], int) else None,
        total=acc["total"] if isinstance(acc["total"], int) else None,
        stable_branch=acc["branch"] if isinstance(acc["branch"], str) else None,
        branch_suffix_y=bool(acc["dot_y"]),
        counter_width=acc["width"] if isinstance(acc["width"], int) else None,
        is_reply=is_reply,
        subject=text.strip(),
    )


# --------------------------------------------------------------------------------------------
# Headers


def _unsurrogate(value: str) -> str:
    # Raw 8-bit header bytes arrive as surrogates; most such headers are UTF-8.
    try:
        raw = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value
    return raw.decode("utf-8", "replace")


class _Headers:
    """The header section of one message: first value of each field, unfolded lazily.

    Read here rather than with the stdlib parser, which builds a whole message object (and for
    multipart mail every part) when tracker reads a dozen fields and one text body: that was
    most of the parse time on real archives. Values keep their folding (``\n`` + whitespace)
    and undecoded RFC 2047 words, as compat32 gives them.
    """

    __slots__ = ("body_start", "fields", "has_fields", "terminated")

    def __init__(self, data: bytes) -> None:
        self.fields: dict[str, str] = {}
        start = 0
        if data.startswith(b"From "):  # an mbox separator left on the mail
            nl = data.find(b"\n")
            start = len(data) if nl < 0 else nl + 1
        end = _HEADER_END_RE.search(data, start)
        block = data[start : end.start() + 1 if end else len(data)]
        self.terminated = end is not None
        self.body_start = end.end() if end else len(data)
        lines = block.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        name: str | None = None
        value: list[bytes] = []
        for i, line in enumerate(lines):
            if line.endswith(b"\r"):
                line = line[:-1]
            if line[:1] in (b" ", b"\t") and name is not None:
                value.append(b"\n" + line)
                continue
            m = _FIELD_RE.match(line)
            if m is None:
                # Not a header: the body starts here (compat32 does the same).
                self.terminated = False
                self.body_start = start + sum(len(x) + 1 for x in lines[:i])
                break
            self._store(name, value)
            name = m.group(1).decode("ascii").lower()
            value = [line[m.end() :].lstrip(b" \t")]
        self._store(name, value)
        self.has_fields = bool(self.fields)

    def _store(self, name: str | None, value: list[bytes]) -> None:
        if name is not None and name not in self.fields:
            raw = value[0] if len(value) == 1 else b"".join(value)
            try:
                self.fields[name] = raw.decode("utf-8")
            except UnicodeDecodeError:  # 8-bit bytes in another charset: replaced, not fatal
                self.fields[name] = raw.decode("utf-8", "replace")

    def raw(self, name: str) -> str | None:
        return self.fields.get(name)

    def text(self, name: str) -> str | None:
        """Decoded (RFC 2047), unfolded, whitespace collapsed."""
        raw = self.fields.get(name)
        if raw is None:
            return None
        decoded = _decode_words(raw) if "=?" in raw else raw
        return " ".join(decoded.split()) or None


_FIELD_RE = re.compile(rb"([!-9;-~]+)[ \t]*:")
_HEADER_END_RE = re.compile(rb"\n\r?\n")


def _decode_words(raw: str) -> str:
    """RFC 2047 decoding that survives bad encoded words, unknown charsets and 8-bit bytes."""
    try:
        words = decode_header(raw)
    except Exception:  # malformed encoded words: keep the text as it came
        return raw
    if not any(charset == "unknown-8bit" for _, charset in words):
        try:
            return str(make_header(words))
        except Exception:  # unknown charset names: decode word by word below
            pass
    out: list[str] = []
    for chunk, charset in words:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        name = _charset_ok(charset) if charset and charset != "unknown-8bit" else None
        out.append(chunk.decode(name or "utf-8", "replace"))
    return "".join(out)


# A Message-ID as RFC 5322 writes it: one angle-bracketed token, nothing inside that could
# start another one. Whatever else is there ("<"><script>x</script>@h>") is not an id.
_WHOLE_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_BARE_MSGID_RE = re.compile(r"[^<>\s\\]+")
_TRAILING_COMMENT_RE = re.compile(r"\s*\([^()]*\)\s*$")


def parse_msgid(value: str | None) -> str | None:
    """The Message-ID a header names, whole; None when the header is empty or absent.

    Raises SourceError when something is there but is not one id: truncating
    ``<"><script>x</script>@h.example>`` to ``"`` would file the mail under someone else's id.
    """
    if value is None:
        return None
    text = _TRAILING_COMMENT_RE.sub("", " ".join(value.split()))
    if not text or text == "<>":
        return None
    m = _WHOLE_MSGID_RE.fullmatch(text) or _BARE_MSGID_RE.fullmatch(text)
    if m is None:
        raise SourceError(f"malformed Message-ID header: {value[:200]!r}")
    return (m.group(1) if m.lastindex else m.group(0)).strip("<>") or None


def normalize_msgid(value: str | None) -> str | None:
    """``<abc@host>`` -> ``abc@host``; also accepts a bare id. None when nothing usable is left.

    Lenient, for fields that merely point at other mails (In-Reply-To, archive pages): the first
    whole ``<...>`` token with an ``@``, else a bare token; never a fragment of a hostile value.
    """
    if not value:
        return None
    try:
        whole = parse_msgid(value)
    except SourceError:
        whole = None
    if whole is not None:
        return whole
    for m in _MSGID_RE.finditer(value):
        if "@" in m.group(1) and _isolated(value, m):
            return m.group(1)
    return None


def _isolated(value: str, m: re.Match[str]) -> bool:
    """A ``<...>`` match not glued to other brackets (``<a><b>@c>`` is one broken id)."""
    before = value[m.start() - 1] if m.start() else " "
    after = value[m.end()] if m.end() < len(value) else " "
    return before not in "<>" and after not in "<>@"


def _msgid_list(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = [m.group(1) for m in _MSGID_RE.finditer(value) if _isolated(value, m)]
    if not found and "<" not in value and ">" not in value:
        found = [t for t in value.split() if t]
    out: list[str] = []
    for mid in found:
        if mid not in out:
            out.append(mid)
    return tuple(out)


def _list_id(raw: str | None) -> str | None:
    """``Sparclinux <sparclinux.vger.kernel.org>`` -> ``sparclinux.vger.kernel.org``."""
    if not raw:
        return None
    m = _MSGID_RE.search(raw)
    if m:
        return m.group(1)
    token = raw.split()
    return token[0].strip("<>") or None if token else None


def addresses(raw: str | None) -> tuple[str, ...]:
    """Lower-cased addresses of an address-list field, read before any RFC 2047 decoding: an
    encoded display name can then never contribute an address."""
    if not raw:
        return ()
    try:
        pairs = email.utils.getaddresses([" ".join(raw.split())])
    except Exception:
        return ()
    return tuple(addr.strip().lower() for _, addr in pairs if "@" in addr)


def parse_from(raw: str | None) -> tuple[str | None, str | None]:
    """(display name, address) of a From: field.

    The address comes from the raw field, the display name is decoded afterwards, so
    ``=?utf-8?b?...?= <attacker@evil.example>`` whose name decodes to
    ``"Greg KH <gregkh@linuxfoundation.org>"`` stays attacker@evil.example.
    """
    if raw is None:
        return None, None
    text = " ".join(raw.split())
    if not text:
        return None, None
    name_raw, addr = "", ""
    if text.endswith(">") and "<" in text:
        # The last angle-addr is the address; everything before it is the phrase.
        cut = text.rindex("<")
        name_raw, addr = text[:cut].strip(), text[cut + 1 : -1].strip()
        if name_raw.startswith('"') and name_raw.endswith('"') and len(name_raw) >= 2:
            name_raw = name_raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    else:
        try:
            name_raw, addr = email.utils.parseaddr(text)
        except Exception:
            return _decode_words(text), None
        if not addr and not name_raw:
            return _decode_words(text), None
    name = " ".join(_decode_words(name_raw).split()) if name_raw else ""
    if len(name) >= 2 and name[0] == name[-1] == '"':  # quotes inside an encoded word
        name = name[1:-1].strip()
    return (name or None), (addr or None)


def parse_date(value: str | None) -> datetime | None:
    """RFC 2822 or ctime-like dates (pipermail, mbox ``From `` lines) as aware datetimes."""
    if not value:
        return None
    value = _COLON_ZONE_RE.sub(r"\1\2\3", " ".join(value.split()))
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        dt = None
    if dt is None:
        dt = _parse_ctime_like(value)
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


_COLON_ZONE_RE = re.compile(r"([+-])(\d\d):(\d\d)$")
_CTIME_RE = re.compile(
    r"(?:\w{3},?\s+)?(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+"
    r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ampm>[AP]M)?\s*"
    r"(?P<tz>[A-Z]{1,5}|[+-]\d{4})?\s+(?P<year>\d{4})"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


def _parse_ctime_like(value: str) -> datetime | None:
    m = _CTIME_RE.search(value)
    if not m:
        return None
    month = _MONTHS.get(m.group("mon").lower())
    if month is None:
        return None
    hour = int(m.group("h"))
    if m.group("ampm") == "PM" and hour < 12:
        hour += 12
    elif m.group("ampm") == "AM" and hour == 12:
        hour = 0
    tz = _tz_of(m.group("tz"))
    try:
        return datetime(
            int(m.group("year")),
            month,
            int(m.group("day")),
            hour,
            int(m.group("m")),
            int(m.group("s") or 0),
            tzinfo=tz,
        )
    except ValueError:
        return None


def _tz_of(token: str | None) -> timezone:
    if not token:
        return UTC
    if token[0] in "+-":
        minutes = int(token[1:3]) * 60 + int(token[3:5])
        return timezone(timedelta(minutes=-minutes if token[0] == "-" else minutes))
    return timezone(timedelta(minutes=_TZ_ABBREV.get(token.upper(), 0)))


# --------------------------------------------------------------------------------------------
# Bodies


def _charset_ok(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, str]:
    """Decode body bytes: (text, charset actually used). Never raises."""
    charset = _charset_ok(declared)
    wide = charset is not None and charset.startswith(_UNICODE_WIDE)
    if not wide:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    if (charset and (declared or "").lower() not in _ASCII_CHARSETS) or wide:
        try:
            return data.decode(charset or "utf-8"), charset or "utf-8"
        except (UnicodeDecodeError, LookupError):
            pass
    if charset and charset != "ascii":
        return data.decode(charset, "replace"), charset
    return data.decode("utf-8", "replace"), "utf-8"


_BODY_TYPES = frozenset(
    {"text/plain", "text/x-patch", "text/x-diff", "text/x-log", "application/x-patch"}
)
_CTYPE_RE = re.compile(r"^\s*([^\s;/]+/[^\s;]+)")
_CHARSET_PARAM_RE = re.compile(r';\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.IGNORECASE)
_REQUIRED = ("message-id", "from", "subject", "date")


def _text_parts(msg: Message) -> list[Message]:
    parts: list[Message] = []
    try:
        for part in msg.walk():
            if part.is_multipart():
                continue
            ctype = (part.get_content_type() or "text/plain").lower()
            if ctype in _BODY_TYPES:
                parts.append(part)
    except Exception:
        return [msg] if not msg.is_multipart() else []
    return parts


def _part_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("ascii", "surrogateescape")
    return b""


def _multipart_body(data: bytes, max_bytes: int) -> tuple[str, str | None]:
    """Every text part of a MIME message, through the stdlib parser (a few percent of mail)."""
    try:
        msg = email.message_from_bytes(data, policy=compat32)
    except Exception as exc:  # the stdlib parser is lenient; this is a last resort
        raise SourceError(f"unparsable mail: {type(exc).__name__}") from exc
    texts: list[str] = []
    used: str | None = None
    total = 0
    for part in _text_parts(msg):
        payload = _part_bytes(part)
        total += len(payload)
        if total > max_bytes:
            raise SourceError(f"body too large ({total} bytes > limit {max_bytes})")
        try:
            declared = part.get_content_charset()
        except Exception:
            declared = None
        text, charset = decode_bytes(payload, declared)
        used = used or charset
        texts.append(text)
    return "\n".join(texts), used


def _transfer_decode(payload: bytes, cte: str | None) -> bytes:
    """Content-Transfer-Encoding undone as compat32 would; undecodable input is kept as is."""
    cte = (cte or "").strip().lower()
    if cte == "quoted-printable":
        return quopri.decodestring(payload)
    if cte == "base64":
        joined = b"".join(payload.split())
        try:
            return binascii.a2b_base64(joined + b"=" * (-len(joined) % 4))
        except (binascii.Error, ValueError):
            return payload
    return payload


def _single_body(headers: _Headers, payload: bytes, max_bytes: int) -> tuple[str, str | None]:
    ctype_field = headers.raw("content-type") or ""
    m = _CTYPE_RE.match(ctype_field)
    ctype = m.group(1).lower() if m else "text/plain"
    if ctype not in _BODY_TYPES:
        return "", None
    data = _transfer_decode(payload, headers.raw("content-transfer-encoding"))
    if len(data) > max_bytes:
        raise SourceError(f"body too large ({len(data)} bytes > limit {max_bytes})")
    cm = _CHARSET_PARAM_RE.search(ctype_field)
    declared = (cm.group(1) or cm.group(2)).strip().lower() if cm else None
    return decode_bytes(data, declared or None)


def _check_complete(headers: _Headers, data: bytes) -> None:
    """A header section that runs to the end of the data without the fields every mail carries
    was cut off: recording it would file a fragment under a made-up id."""
    if headers.terminated or headers.body_start < len(data):
        return
    missing = [f for f in _REQUIRED if f not in headers.fields]
    if missing or not data.endswith(b"\n"):
        what = ", ".join(missing) if missing else "the end of the last field"
        raise SourceError(f"mail truncated in its headers (no {what})")


def parse_mail(data: bytes, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Mail:
    """Parse one message. Raises SourceError for non-mail input, a mail cut off inside its
    headers, a malformed Message-ID, or an oversized body."""
    if not isinstance(data, bytes | bytearray):
        raise SourceError("mail must be bytes")
    data = bytes(data)
    # Base64 inflates by 4/3; anything far beyond the cap cannot decode to an acceptable body.
    if len(data) > max_body_bytes * 2 + 1024 * 1024:
        raise SourceError(f"body too large ({len(data)} bytes > limit {max_body_bytes})")
    if not data.strip():
        raise SourceError("empty mail")
    if _HTML_START_RE.match(data[:512]):
        raise SourceError("expected a mail, got HTML/XML")
    headers = _Headers(data)
    if not headers.has_fields:
        raise SourceError("not a mail: no header fields")
    _check_complete(headers, data)
    msgid = parse_msgid(headers.raw("message-id"))
    ctype = (headers.raw("content-type") or "").lstrip().lower()
    if ctype.startswith(("multipart/", "message/")):
        body, charset = _multipart_body(data, max_body_bytes)
    else:
        body, charset = _single_body(headers, data[headers.body_start :], max_body_bytes)
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    synthetic = msgid is None
    if msgid is None:
        msgid = f"{hashlib.sha1(data).hexdigest()}@{SYNTHETIC_MSGID_DOMAIN}"
    from_name, from_email = parse_from(headers.raw("from"))
    return Mail(
        msgid=msgid,
        msgid_synthetic=synthetic,
        subject=headers.text("subject") or "",
        from_name=from_name,
        from_email=from_email.lower() if from_email else None,
        date=parse_date(headers.text("date")),
        in_reply_to=normalize_msgid(headers.raw("in-reply-to")),
        references=_msgid_list(headers.raw("references")),
        list_id=_list_id(headers.raw("list-id")),
        to_header=headers.raw("to"),
        cc_header=headers.raw("cc"),
        x_stable=headers.text("x-stable"),
        x_stable_base=headers.text("x-stable-base"),
        x_patchwork_hint=headers.text("x-patchwork-hint"),
        user_agent=headers.text("user-agent"),
        body=body,
        charset=charset,
    )


# --------------------------------------------------------------------------------------------
# mbox


def _maybe_gunzip(data: bytes, max_bytes: int) -> bytes:
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            out = fh.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"corrupt gzip mbox: {exc}") from exc
    if len(out) > max_bytes:
        raise SourceError(f"mbox too large after decompression (> {max_bytes} bytes)")
    return out


def _is_separator(lines: list[bytes], i: int) -> bool:
    if not lines[i].startswith(b"From "):
        return False
    # A real separator is followed by a header field; "From foo" prose in an unescaped body is not.
    nxt = lines[i + 1] if i + 1 < len(lines) else b""
    return bool(_HEADER_LINE_RE.match(nxt))


def _finish(chunk: list[bytes]) -> bytes:
    while chunk and chunk[-1].strip() == b"":
        chunk.pop()
    out = [line[1:] if _MBOXRD_ESCAPED_RE.match(line) else line for line in chunk]
    return b"".join(out)


def split_mbox(data: bytes, *, max_bytes: int = 512 * 1024 * 1024) -> Iterator[bytes]:
    """Yield each message of an mboxrd/mboxo archive (gzip accepted), ``>From`` unescaped.

    Raises SourceError when the input is HTML (an error page served instead of the archive) or
    does not start with a ``From `` separator line.
    """
    if not isinstance(data, bytes | bytearray):
        raise SourceError("mbox must be bytes")
    data = _maybe_gunzip(bytes(data), max_bytes)
    stripped = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if not stripped:
        return
    if _HTML_START_RE.match(stripped[:512]):
        raise SourceError("expected an mbox, got HTML")
    if not stripped.startswith(b"From "):
        raise SourceError("expected an mbox: no 'From ' separator line at the start")
    parts = stripped.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    lines = [ln.rstrip(b"\r") + b"\n" for ln in parts]
    chunk: list[bytes] = []
    started = False
    for i in range(len(lines)):
        if _is_separator(lines, i) or (not started and lines[i].startswith(b"From ")):
            if started:
                msg = _finish(chunk)
                if msg:
                    yield msg
            chunk = []
            started = True
            continue
        chunk.append(lines[i])
    if started:
        msg = _finish(chunk)
        if msg:
            yield msg


def parse_mbox(
    data: bytes, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> Iterator[Mail | SourceError]:
    """Parse every message; a bad message yields its SourceError instead of stopping the run."""
    for raw in split_mbox(data):
        try:
            yield parse_mail(raw, max_body_bytes=max_body_bytes)
        except SourceError as exc:
            yield exc
