"""What the parsers say about one raw mail, computed without the store.

Pool workers import this module and nothing heavier: each worker is a fresh interpreter, and
importing the store (SQLAlchemy and the models) would cost each of them about 40 MiB for code
they never run.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr

from tracker.errors import SourceError
from tracker.ingest import stablemail
from tracker.ingest.mmcommits import MmAdded, MmRemoved, parse_mm_commits, parse_tip_commit
from tracker.parse.mail import Mail, parse_mail
from tracker.parse.patch import Diff, parse_diff
from tracker.parse.trailers import DEFAULT_STABLE_LIST, Trailers, parse_trailers
from tracker.pathkey import paths_key, unquote_path


def worker_init() -> None:
    """Start a parse-pool worker. Ctrl-C reaches every process of the terminal's group: workers
    leave it to the parent, which stops the pool and reports one line, instead of each printing
    a traceback. (Defined here, not beside the pool, so that a worker unpickling it imports
    only the parsers.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# b4 writes "change-id: <date>-<slug>-<hash>" into every cover letter of every version.
_CHANGE_ID_RE = re.compile(r"^change-id:[ \t]*([\w.-]{6,120})[ \t]*$", re.I | re.M)
_REVIEW_RE = re.compile(r"^[ \t]*(acked|reviewed|tested)-by:[ \t]*(\S.*?)[ \t]*$", re.I | re.M)


@dataclass(frozen=True)
class Review:
    kind: str
    value: str


def find_reviews(body: str) -> tuple[Review, ...]:
    """Trailers a mail's author gave, in order, without duplicates; quoted lines never match."""
    if "-by:" not in body and "-BY:" not in body.upper():
        return ()
    out: dict[tuple[str, str], Review] = {}
    for m in _REVIEW_RE.finditer(body):
        name, addr = parseaddr(m.group(2))
        if "@" not in addr:
            continue
        value = f"{name} <{addr}>" if name else f"<{addr}>"
        kind = f"{m.group(1).lower()}-by"
        out.setdefault((kind, value.lower()), Review(kind, value[:998]))
    return tuple(out.values())


def find_change_id(body: str) -> str | None:
    """The b4 ``change-id:`` of a posting, which stays the same across its versions."""
    if "change-id:" not in body.lower():
        return None
    m = _CHANGE_ID_RE.search(body)
    return m.group(1) if m else None


@dataclass(frozen=True)
class Analysed:
    """Everything the parsers say about one raw mail; picklable, so it can come from a pool."""

    mail: Mail | None
    error: str | None = None
    stable: stablemail.StableMail | None = None
    mm: MmAdded | MmRemoved | None = None
    tip: bool = False
    patch_id: str | None = None
    paths_key: str | None = None
    has_diff: bool = False
    trailers: Trailers | None = None
    clean_subject: str | None = None
    reviews: tuple[Review, ...] = ()
    change_id: str | None = None


_DIFF_KINDS = ("review-patch", "backport", "autosel")


def diff_paths_key(diff: Diff) -> str:
    """The key a commit with this diff would have (tracker.pathkey)."""
    return paths_key(unquote_path(p) for p in diff.paths)


def analyse(
    raw: bytes,
    upstream_patterns: Sequence[str] | None = None,
    stable_list: str = DEFAULT_STABLE_LIST,
) -> Analysed:
    """Parse one mail with every parser that may apply. Pure: no store, no network."""
    try:
        mail = parse_mail(raw)
        stable = stablemail.parse_stable_mail(mail)
        mm = parse_mm_commits(mail) if stable is None else None
        tip = stable is None and mm is None and parse_tip_commit(mail) is not None
        diff = None
        if (stable is None and mm is None) or (stable is not None and stable.kind in _DIFF_KINDS):
            diff = parse_diff(mail.body)
        if diff is not None and not diff.complete:
            tags = mail.tags
            if not tags.is_reply and not tags.is_cover:
                # A posting whose hunks stop short was cut off or mangled in transit: its
                # patch-id would be wrong and git could not apply it.
                raise SourceError(
                    "patch truncated or damaged: a hunk ends before its line counts are met"
                )
            diff = None  # a sketch in a reply or cover letter: kept, without a patch-id
        trailers = parse_trailers(mail.body, upstream_patterns, stable_list) if mm is None else None
        reviews = find_reviews(mail.body) if stable is None and mm is None else ()
        change_id = find_change_id(mail.body) if stable is None and mm is None else None
    except SourceError as exc:
        return Analysed(mail=None, error=str(exc))
    except Exception as exc:
        return Analysed(mail=None, error=f"parser failure: {type(exc).__name__}: {exc}")
    return Analysed(
        mail=mail,
        stable=stable,
        mm=mm,
        tip=tip,
        patch_id=diff.patch_id if diff else None,
        paths_key=diff_paths_key(diff) if diff else None,
        has_diff=diff is not None,
        trailers=trailers,
        clean_subject=mail.tags.subject[:4000],
        reviews=reviews,
        change_id=change_id,
    )
