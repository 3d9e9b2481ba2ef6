"""Outgoing mail mechanics: header safety, body wrapping, threading, mbox output, SMTP.

What the four kinds of mail *say* lives in templates and in :mod:`tracker.report.mails`; this
module makes sure whatever they say leaves as a well-formed RFC 5322 message:

* every header value passes :func:`clean_header` (CR, LF and other control characters become
  spaces), so text taken from a mail or a commit can never start a new header;
* every address passes :func:`check_address` (one address, a plain addr-spec);
* non-ASCII headers are RFC 2047 encoded (``email`` package), long ones folded as git does;
* bodies are UTF-8, ``8bit`` (as ``git format-patch`` writes them), lines of prose over the
  78 columns (RFC 5322) are wrapped to 72, diffs and trailers never are (:func:`wrap_body`);
* the mbox is the ``mboxrd`` flavour ``git format-patch --stdout`` / ``b4`` produce: a
  ``From <sha> Mon Sep 17 00:00:00 2001`` line per message and ``>From`` escaping.

tracker never sends mail unless ``[email] smtp_server`` is configured (:func:`send_mails`).
"""

from __future__ import annotations

import contextlib
import email.policy
import email.utils
import os
import re
import secrets
import smtplib
import ssl
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from tracker.config import EmailConfig
from tracker.errors import ConfigError, TrackerError

# RFC 5322 asks for lines of at most 78 characters; longer prose is wrapped to 72, the width of
# the stable team's own text (commit messages keep their <= 75 columns untouched).
WRAP_LIMIT = 78
WRAP_WIDTH = 72

MBOX_DATE = "Mon Sep 17 00:00:00 2001"
ZERO_SHA = "0" * 40

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_SPACES = re.compile(r"\s+")
_ADDR_SPEC = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_MSGID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_NAME_SPECIALS = re.compile(r'[()<>@,;:\\".\[\]]')
_MBOX_FROM = re.compile(rb"^(>*From )", re.MULTILINE)

# Policy for files: LF line ends (mbox on Unix); SMTP gets CRLF from smtplib's own policy.
FILE_POLICY = email.policy.default.clone(linesep="\n", max_line_length=78)


class MailError(ConfigError):
    """A value that cannot go into a mail header (bad address, bad Message-ID, header name).

    A usage/config problem (exit code 2) whose message names the value, not a config file.
    """

    def __init__(self, message: str) -> None:
        TrackerError.__init__(self, message)
        self.path = None
        self.key = None


def clean_header(value: str) -> str:
    """One line of header text: control characters (CR/LF included) become single spaces."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


def format_address(name: str, addr: str) -> str:
    name = clean_header(name)
    if not name:
        return addr
    if _NAME_SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def check_address(value: str, what: str = "address") -> str:
    """``Name <addr>`` or ``addr``, validated; raise MailError for anything else."""
    text = clean_header(value)
    pairs = email.utils.getaddresses([text])
    # The address must appear verbatim: the parser quietly "repairs" some malformed input.
    if len(pairs) != 1 or not _ADDR_SPEC.fullmatch(pairs[0][1]) or pairs[0][1] not in text:
        raise MailError(f"{what}: not a single valid e-mail address: {text!r}")
    name, addr = pairs[0]
    return format_address(name, addr)


def safe_address(name: str | None, addr: str | None) -> str | None:
    """An address built from store data (mail-derived), or None when it is not valid."""
    if not addr:
        return None
    addr = clean_header(addr)
    if not _ADDR_SPEC.fullmatch(addr):
        return None
    return format_address(name or "", addr)


def address_email(value: str) -> str:
    return email.utils.parseaddr(value)[1].lower()


def address_name(value: str) -> str:
    name, addr = email.utils.parseaddr(value)
    return name or addr


def check_msgid(value: str, what: str = "Message-ID") -> str:
    """``<local@domain>``; angle brackets are added when missing."""
    text = clean_header(value)
    if text and not text.startswith("<"):
        text = f"<{text}>"
    if not _MSGID.fullmatch(text):
        raise MailError(f"{what}: not a Message-ID: {value!r}")
    return text


# -- wrapping --------------------------------------------------------------------------------

_TRAILER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*: \S")
_SHA_REF = re.compile(r"^[0-9a-f]{7,40} \(")
_PATCH_START = re.compile(r"^(---$|--- a/|diff --git |Index: |@@ )")
_NO_WRAP_PREFIXES = (">", "|", "#", "$", "git ", "[ ", "commit ", "-- ")


def _prose(line: str) -> bool:
    if not line or line[0].isspace() or line.startswith(_NO_WRAP_PREFIXES):
        return False
    return not (_TRAILER.match(line) or _SHA_REF.match(line) or "://" in line)


def wrap_body(text: str, limit: int = WRAP_LIMIT, width: int = WRAP_WIDTH) -> str:
    """Wrap prose lines longer than ``limit`` to ``width`` columns, as kernel mails are.

    Left alone: everything from the first patch line on (``---``, ``diff --git``), trailers
    (``Fixes:``, ``Signed-off-by:``...), indented or quoted lines, commands, commit references
    and URLs: each of those is meaningful exactly as written.
    """
    out: list[str] = []
    in_patch = False
    for line in text.split("\n"):
        if not in_patch and _PATCH_START.match(line):
            in_patch = True
        if in_patch or len(line) <= limit or not _prose(line):
            out.append(line)
            continue
        out.extend(
            textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""]
        )
    return "\n".join(out)


# -- messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMail:
    """A validated message; build with :func:`compose`."""

    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str
    message_id: str
    date: datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    # The commit this mail carries, for the mbox "From <sha>" line (zeros for other mails).
    commit: str | None = None

    def header_lines(self) -> list[tuple[str, str]]:
        hs = [("From", self.sender)]
        if self.to:
            hs.append(("To", ", ".join(self.to)))
        if self.cc:
            hs.append(("Cc", ", ".join(self.cc)))
        hs += [
            ("Subject", self.subject),
            ("Date", email.utils.format_datetime(self.date)),
            ("Message-ID", self.message_id),
        ]
        if self.in_reply_to:
            hs.append(("In-Reply-To", self.in_reply_to))
        if self.references:
            hs.append(("References", " ".join(self.references)))
        hs += list(self.headers)
        # The MIME headers git format-patch writes for a UTF-8 patch.
        hs += [
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("Content-Transfer-Encoding", "8bit"),
        ]
        return hs

    def as_bytes(self) -> bytes:
        """The message with LF line ends: folded headers, blank line, UTF-8 body."""
        head = "".join(fold_header(n, v) for n, v in self.header_lines())
        return head.encode("ascii") + b"\n" + self.body.encode("utf-8")

    def to_message(self) -> EmailMessage:
        """The message parsed back by the ``email`` package (for callers that want objects)."""
        msg = email.message_from_bytes(self.as_bytes(), policy=FILE_POLICY)
        assert isinstance(msg, EmailMessage)
        return msg


def fold_header(name: str, value: str, width: int = 78) -> str:
    """``Name: value`` folded at spaces to ``width`` columns, as git format-patch folds.

    Non-ASCII values are RFC 2047 encoded by the ``email`` package (which also folds them);
    ASCII values are folded here because the package moves a whole short value to a
    continuation line, which is legal but unlike any mail on the kernel lists.
    """
    if not value.isascii():
        folded = FILE_POLICY.header_factory(name, value).fold(policy=FILE_POLICY)
        return str(folded)
    line = f"{name}:"
    lines: list[str] = []
    for word in value.split(" "):
        if len(line) + 1 + len(word) > width and line.strip() and not line.endswith(":"):
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    return "\n".join(lines) + "\n"


def _dedupe(addresses: Iterable[str], skip: set[str]) -> tuple[str, ...]:
    out: list[str] = []
    for a in addresses:
        key = address_email(a)
        if key and key not in skip:
            skip.add(key)
            out.append(a)
    return tuple(out)


def compose(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    body: str,
    message_id: str,
    date: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    commit: str | None = None,
    wrap: bool = True,
) -> OutgoingMail:
    """Validate and normalise every part of a message; raise MailError on a bad value."""
    checked_headers: list[tuple[str, str]] = []
    for name, value in headers:
        if not _HEADER_NAME.fullmatch(name):
            raise MailError(f"not a header name: {name!r}")
        checked_headers.append((name, clean_header(value)))
    seen: set[str] = set()
    to_list = _dedupe((check_address(a, "To") for a in to), seen)
    cc_list = _dedupe((check_address(a, "Cc") for a in cc), seen)
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if wrap:
        text = wrap_body(text)
    if not text.endswith("\n"):
        text += "\n"
    return OutgoingMail(
        sender=check_address(sender, "From"),
        to=to_list,
        cc=cc_list,
        subject=clean_header(subject),
        body=text,
        message_id=check_msgid(message_id),
        date=date,
        in_reply_to=check_msgid(in_reply_to, "In-Reply-To") if in_reply_to else None,
        references=tuple(check_msgid(r, "References") for r in references),
        headers=tuple(checked_headers),
        commit=commit,
    )


def thread(mails: Sequence[OutgoingMail], in_reply_to: str | None = None) -> list[OutgoingMail]:
    """Thread a series as ``git send-email`` does by default: every mail answers the first.

    The first mail answers ``in_reply_to`` when given (a backport answering a FAILED mail), and
    References carries the whole chain from the thread's root.
    """
    if not mails:
        return []
    root = mails[0]
    head_refs: tuple[str, ...] = ()
    if in_reply_to:
        parent = check_msgid(in_reply_to, "In-Reply-To")
        head_refs = (parent,)
        root = replace(root, in_reply_to=parent, references=head_refs)
    out = [root]
    for m in mails[1:]:
        out.append(
            replace(m, in_reply_to=root.message_id, references=(*head_refs, root.message_id))
        )
    return out


def split_subject(rendered: str, template: str) -> tuple[str, str]:
    """Templates start with ``Subject: ...`` and a blank line; the rest is the body.

    Only that first line becomes the subject, so a value containing a newline can at worst
    push text into the body, never into the headers.
    """
    first, sep, rest = rendered.partition("\n")
    if not first.startswith("Subject:") or not sep:
        raise MailError(f"template {template} must start with a 'Subject: ...' line")
    return clean_header(first.removeprefix("Subject:")), rest.removeprefix("\n")


# -- ids and dates ---------------------------------------------------------------------------

Clock = Callable[[], datetime]
IdMaker = Callable[[], str]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class MessageIds:
    """Message-IDs shaped like the stable team's: ``<20260204143912.966509643@domain>``."""

    domain: str
    clock: Clock = utc_now
    _count: int = field(default=0, init=False)

    def __call__(self) -> str:
        self._count += 1
        stamp = self.clock().strftime("%Y%m%d%H%M%S")
        return f"<{stamp}.{self._count}{secrets.randbelow(10**9):09d}@{self.domain}>"


@dataclass(frozen=True)
class MailSettings:
    """Who sends, to whom, and where dates and Message-IDs come from (injected in tests)."""

    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    clock: Clock = utc_now
    make_id: IdMaker | None = None

    @classmethod
    def from_config(
        cls,
        cfg: EmailConfig,
        *,
        to: Sequence[str] = (),
        cc: Sequence[str] = (),
        clock: Clock | None = None,
        make_id: IdMaker | None = None,
    ) -> MailSettings:
        sender = check_address(cfg.from_address, "[email] from")
        return cls(
            sender=sender,
            to=tuple(check_address(a, "To") for a in (to or cfg.to)),
            cc=tuple(check_address(a, "Cc") for a in (cc or cfg.cc)),
            clock=clock or utc_now,
            make_id=make_id,
        )

    def ids(self) -> IdMaker:
        if self.make_id is not None:
            return self.make_id
        domain = address_email(self.sender).rpartition("@")[2] or "localhost"
        return MessageIds(domain, self.clock)

    def dates(self, n: int) -> list[datetime]:
        # One second apart, as git send-email does, so mail readers sort a series in order.
        start = self.clock()
        return [start + timedelta(seconds=i) for i in range(n)]


# -- output ----------------------------------------------------------------------------------


def mbox_bytes(mails: Iterable[OutgoingMail]) -> bytes:
    """An mboxrd file: what ``git format-patch --stdout`` writes and ``b4``/``git am`` read."""
    chunks: list[bytes] = []
    for m in mails:
        raw = m.as_bytes()
        if not raw.endswith(b"\n"):
            raw += b"\n"
        # mboxrd: a body line "From ..." (or ">From ...") gains one more ">".
        raw = _MBOX_FROM.sub(rb">\1", raw)
        chunks.append(f"From {m.commit or ZERO_SHA} {MBOX_DATE}\n".encode() + raw + b"\n")
    return b"".join(chunks)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_mbox(mails: Sequence[OutgoingMail], path: Path) -> None:
    """Write (replace) ``path`` in one step: a reader never sees half an mbox."""
    try:
        _atomic_write(path, mbox_bytes(mails))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def _slug(subject: str) -> str:
    s = re.sub(r"^(\[[^\]]*\]\s*)+", "", subject)
    s = re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")
    return s[:52].rstrip("-") or "mail"


def write_split(mails: Sequence[OutgoingMail], directory: Path) -> list[Path]:
    """One file per message, named like ``git format-patch`` output (for ``git send-email``)."""
    paths: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for i, m in enumerate(mails):
            p = directory / f"{i:04d}-{_slug(m.subject)}.patch"
            _atomic_write(p, mbox_bytes([m]))
            paths.append(p)
    except OSError as exc:
        raise ConfigError(f"cannot write {directory}: {exc.strerror or exc}") from None
    return paths


def send_mails(
    cfg: EmailConfig,
    mails: Sequence[OutgoingMail],
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
) -> int:
    """Send over SMTP with STARTTLS. Refuses unless ``[email] smtp_server`` is configured."""
    if not cfg.smtp_server:
        raise ConfigError(
            "no SMTP server configured: tracker only writes mail to files "
            "(set [email] smtp_server to send)",
            key="email.smtp_server",
        )
    context = ssl_context or ssl.create_default_context()
    sent = 0
    try:
        with smtplib.SMTP(cfg.smtp_server, cfg.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise TrackerError(
                    f"SMTP server {cfg.smtp_server} does not offer STARTTLS; not sending"
                )
            smtp.starttls(context=context)
            smtp.ehlo()
            for m in mails:
                rcpts = [address_email(a) for a in (*m.to, *m.cc)]
                # sendmail() turns LF into CRLF and dot-stuffs; the bytes are what mbox holds.
                smtp.sendmail(address_email(m.sender), rcpts, m.as_bytes())
                sent += 1
    except (smtplib.SMTPException, OSError) as exc:
        raise TrackerError(
            f"sending mail via {cfg.smtp_server}:{cfg.smtp_port} failed after {sent} of "
            f"{len(mails)} messages: {exc}"
        ) from None
    return sent
