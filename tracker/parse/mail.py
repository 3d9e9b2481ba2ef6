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

import codecs
import email
import email.utils
import gzip
import hashlib
import io
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
    to: tuple[str, ...]
    cc: tuple[str, ...]
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
    # compat32 turns raw 8-bit header bytes into surrogates; most such headers are UTF-8.
    try:
        raw = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value
    return raw.decode("utf-8", "replace")


def _header_text(msg: Message, name: str) -> str | None:
    try:
        raw = msg.get(name)
    except Exception:  # compat32 internals on hostile input; the header is then just absent
        return None
    if raw is None:
        return None
    decoded = _decode_words(raw)
    return " ".join(decoded.replace("\r", " ").replace("\n", " ").split()) or None


def _decode_words(raw: object) -> str:
    """RFC 2047 decoding that survives bad encoded words, unknown charsets and 8-bit bytes."""
    try:
        words = decode_header(raw)  # type: ignore[arg-type]
    except Exception:  # malformed encoded words: keep the text as it came
        return _unsurrogate(str(raw))
    if not any(charset == "unknown-8bit" for _, charset in words):
        try:
            return _unsurrogate(str(make_header(words)))
        except Exception:  # unknown charset names: decode word by word below
            pass
    out: list[str] = []
    for chunk, charset in words:
        if isinstance(chunk, str):
            out.append(_unsurrogate(chunk))
            continue
        name = _charset_ok(charset) if charset and charset != "unknown-8bit" else None
        out.append(chunk.decode(name or "utf-8", "replace"))
    return "".join(out)


def _raw_header(msg: Message, name: str) -> str | None:
    try:
        raw = msg.get(name)
    except Exception:
        return None
    if raw is None:
        return None
    return _unsurrogate(str(raw))


def normalize_msgid(value: str | None) -> str | None:
    """``<abc@host>`` -> ``abc@host``; also accepts a bare id. None when nothing usable is left."""
    if not value:
        return None
    m = _MSGID_RE.search(value)
    if m:
        return m.group(1)
    token = value.strip().strip("<>").split()
    return token[0].strip("<>") if token and token[0].strip("<>") else None


def _msgid_list(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = _MSGID_RE.findall(value)
    if not found:
        found = [t.strip("<>") for t in value.split() if t.strip("<>")]
    out: list[str] = []
    for mid in found:
        if mid not in out:
            out.append(mid)
    return tuple(out)


def _addresses(msg: Message, name: str) -> tuple[str, ...]:
    value = _header_text(msg, name)
    if not value:
        return ()
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:
        return ()
    return tuple(addr.strip().lower() for _, addr in pairs if "@" in addr)


def _from(msg: Message) -> tuple[str | None, str | None]:
    value = _header_text(msg, "From")
    if not value:
        return None, None
    try:
        name, addr = email.utils.parseaddr(value)
    except Exception:
        return value, None
    if not addr and not name:
        return value, None
    return (name.strip() or None), (addr.strip() or None)


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


def _body(msg: Message, max_bytes: int) -> tuple[str, str | None]:
    texts: list[str] = []
    used: str | None = None
    total = 0
    for part in _text_parts(msg):
        data = _part_bytes(part)
        total += len(data)
        if total > max_bytes:
            raise SourceError(f"body too large ({total} bytes > limit {max_bytes})")
        try:
            declared = part.get_content_charset()
        except Exception:
            declared = None
        text, charset = decode_bytes(data, declared)
        used = used or charset
        texts.append(text)
    body = "\n".join(texts).replace("\r\n", "\n").replace("\r", "\n")
    return body, used


def parse_mail(data: bytes, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Mail:
    """Parse one message. Raises SourceError for non-mail input or an oversized body."""
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
    try:
        msg = email.message_from_bytes(data, policy=compat32)
    except Exception as exc:  # the stdlib parser is lenient; this is a last resort
        raise SourceError(f"unparsable mail: {type(exc).__name__}") from exc
    if not msg.keys():
        raise SourceError("not a mail: no header fields")
    body, charset = _body(msg, max_body_bytes)
    msgid = normalize_msgid(_raw_header(msg, "Message-ID"))
    synthetic = msgid is None
    if msgid is None:
        msgid = f"{hashlib.sha1(data).hexdigest()}@{SYNTHETIC_MSGID_DOMAIN}"
    from_name, from_email = _from(msg)
    refs = _msgid_list(_raw_header(msg, "References"))
    return Mail(
        msgid=msgid,
        msgid_synthetic=synthetic,
        subject=_header_text(msg, "Subject") or "",
        from_name=from_name,
        from_email=from_email.lower() if from_email else None,
        date=parse_date(_header_text(msg, "Date")),
        in_reply_to=normalize_msgid(_raw_header(msg, "In-Reply-To")),
        references=refs,
        list_id=normalize_msgid(_raw_header(msg, "List-Id")),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        x_stable=_header_text(msg, "X-stable"),
        x_stable_base=_header_text(msg, "X-stable-base"),
        x_patchwork_hint=_header_text(msg, "X-Patchwork-Hint"),
        user_agent=_header_text(msg, "User-Agent"),
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
