"""Record fetched documents and what the parsers find in them.

Every document is kept zlib-compressed (keyed by its sha256, so a re-fetch of the same bytes adds
nothing), then parsed. A document that fails to parse keeps its error message and the rest of the
sync goes on. Derived rows are only ever rebuilt from documents, which is what ``reparse`` does.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.errors import InvalidRevisionError, SourceError
from tracker.ingest import stablemail
from tracker.ingest.archive import ArchiveMessage, parse_archive_text
from tracker.ingest.atom import CommitEntry, parse_cgit_atom
from tracker.ingest.mmcommits import (
    MmAdded,
    MmRemoved,
    parse_mm_commits,
    parse_mm_commits_text,
    parse_tip_commit,
)
from tracker.ingest.reviews import Review, change_id_row, find_change_id, find_reviews, own_rows
from tracker.parse.mail import Mail, parse_mail, split_mbox
from tracker.parse.patch import Diff, parse_diff
from tracker.parse.trailers import DEFAULT_STABLE_LIST, Trailers, parse_trailers
from tracker.pathkey import paths_key, unquote_path
from tracker.revisions import check_sha
from tracker.store.models import (
    Commit,
    Document,
    Message,
    MessageList,
    MmPatch,
    MmState,
    Series,
    SeriesVersion,
    StableEvent,
    Trailer,
)
from tracker.store.queries import insert_ignore
from tracker.store.trailer_rows import trailer_rows

# Content types tracker assigns to stored documents; reparse dispatches on them.
MAIL = "message/rfc822"
MBOX = "application/mbox"
CGIT_ATOM = "application/atom+xml; profile=cgit"
ARCHIVE_TEXT = "text/plain; profile=archive"


@dataclass
class IngestCounts:
    documents: int = 0
    duplicates: int = 0
    messages: int = 0
    stable_events: int = 0
    mm_states: int = 0
    commits: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: IngestCounts) -> None:
        self.documents += other.documents
        self.duplicates += other.duplicates
        self.messages += other.messages
        self.stable_events += other.stable_events
        self.mm_states += other.mm_states
        self.commits += other.commits
        self.errors += other.errors


def _now() -> datetime:
    return datetime.now(UTC)


def _sha(value: str | None) -> str | None:
    """A full sha from a mail, or None: nothing malformed is stored as a commit id."""
    if not value:
        return None
    try:
        v = check_sha(value)
    except InvalidRevisionError:
        return None
    return v if len(v) == 40 else None


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


def diff_paths_key(diff: Diff) -> str:
    """The key a commit with this diff would have (tracker.pathkey)."""
    return paths_key(unquote_path(p) for p in diff.paths)


_DIFF_KINDS = ("review-patch", "backport", "autosel")


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


class MailStore:
    def __init__(
        self,
        session: Session,
        upstream_patterns: Sequence[str],
        source_id: int | None = None,
        list_name: str | None = None,
        stable_list: str = DEFAULT_STABLE_LIST,
    ) -> None:
        self.s = session
        self.upstream_patterns = upstream_patterns
        self.stable_list = stable_list
        self.source_id = source_id
        # The list a source stands for (a mirror's inbox, a feed's list); mails from sources
        # that are not one list (an mbox, a lore thread) are filed under their List-Id.
        self.list_name = list_name
        self._seen: set[str] = set()
        # Message-IDs already in the store, read once per batch (None: ask per message).
        self._stored: set[str] | None = None
        self._trailers: list[dict[str, Any]] = []
        self._lists: list[dict[str, Any]] = []

    # -- documents -------------------------------------------------------------------------

    def _document(self, key: str, data: bytes, digest: str, content_type: str) -> Document:
        return Document(
            source_id=self.source_id,
            key=key[:2000],
            sha256=digest,
            content_type=content_type,
            fetched_at=_now(),
            data=zlib.compress(data, 6),
            error=None,
        )

    def add_document(self, key: str, data: bytes, content_type: str) -> Document | None:
        """Keep ``data``; None if these exact bytes were stored before."""
        digest = hashlib.sha256(data).hexdigest()
        if self.s.scalar(select(Document.id).where(Document.sha256 == digest)) is not None:
            return None
        doc = self._document(key, data, digest, content_type)
        self.s.add(doc)
        self.s.flush()
        return doc

    def ingest_mails(
        self,
        items: Sequence[tuple[str, bytes]],
        mapper: Callable[[Callable[[bytes], Analysed], list[bytes]], Iterable[Analysed]]
        | None = None,
    ) -> IngestCounts:
        """Store and record many single-mail documents with one flush (the mirror hot path)."""
        counts = IngestCounts()
        digests = [hashlib.sha256(raw).hexdigest() for _, raw in items]
        known: set[str] = set()
        for i in range(0, len(digests), 500):
            known.update(
                self.s.scalars(
                    select(Document.sha256).where(Document.sha256.in_(digests[i : i + 500]))
                )
            )
        fresh: list[tuple[Document, bytes]] = []
        again: list[str] = []
        for (key, raw), digest in zip(items, digests, strict=True):
            if digest in known:
                counts.duplicates += 1
                again.append(digest)
                continue
            known.add(digest)
            fresh.append((self._document(key, raw, digest, MAIL), raw))
        self.s.add_all([d for d, _ in fresh])
        self.s.flush()
        fn = partial(
            analyse, upstream_patterns=tuple(self.upstream_patterns), stable_list=self.stable_list
        )
        raws = [raw for _, raw in fresh]
        results = list(mapper(fn, raws) if mapper else map(fn, raws))
        # One query for the batch, not one primary-key lookup per message.
        msgids = sorted({a.mail.msgid for a in results if a.mail is not None})
        self._stored = set()
        for i in range(0, len(msgids), 500):
            self._stored.update(
                self.s.scalars(
                    select(Message.message_id).where(Message.message_id.in_(msgids[i : i + 500]))
                )
            )
        with self.s.no_autoflush:
            for (doc, _), a in zip(fresh, results, strict=True):
                counts.documents += 1
                self._record(a, doc, counts)
        self._stored = None
        self._flush_trailers()
        self._same_bytes_elsewhere(again)
        return counts

    def _same_bytes_elsewhere(self, digests: Sequence[str]) -> None:
        """The very bytes stored before, now seen on this source's list: record that list."""
        if not digests or not self.list_name:
            return
        rows: list[dict[str, Any]] = []
        for i in range(0, len(digests), 500):
            for msgid, doc_id in self.s.execute(
                select(Message.message_id, Message.document_id)
                .join(Document, Document.id == Message.document_id)
                .where(Document.sha256.in_(digests[i : i + 500]))
            ):
                rows.append(
                    {"message_id": msgid, "list_name": self.list_name, "document_id": doc_id}
                )
        insert_ignore(self.s, MessageList, rows)

    def ingest(self, doc: Document, data: bytes) -> IngestCounts:
        """Parse a stored document into records; a parse failure is recorded on the document."""
        counts = IngestCounts(documents=1)
        try:
            if doc.content_type == MAIL:
                self._record(analyse(data, self.upstream_patterns, self.stable_list), doc, counts)
            elif doc.content_type == MBOX:
                self._mbox(data, doc, counts)
            elif doc.content_type == ARCHIVE_TEXT:
                self._archive_text(data.decode("utf-8", "replace"), doc, counts)
            elif doc.content_type == CGIT_ATOM:
                self.cgit_entries(parse_cgit_atom(data), counts)
            else:
                raise SourceError(f"no parser for content type {doc.content_type!r}")
        except SourceError as exc:
            doc.error = str(exc)
            counts.errors.append(f"{doc.key}: {exc}")
        self._flush_trailers()
        return counts

    def _mbox(self, data: bytes, doc: Document, counts: IngestCounts) -> None:
        errors_before = len(counts.errors)
        with self.s.no_autoflush:
            for raw in split_mbox(data):
                self._record(
                    analyse(raw, self.upstream_patterns, self.stable_list), doc, counts, whole=False
                )
        bad = counts.errors[errors_before:]
        if bad:
            # Keep the good messages; say which were bad.
            doc.error = f"{len(bad)} unreadable message(s): {bad[0]}"

    # -- one mail --------------------------------------------------------------------------

    def _record(
        self, a: Analysed, doc: Document, counts: IngestCounts, *, whole: bool = True
    ) -> None:
        if a.mail is None:
            if whole:
                doc.error = a.error
            counts.errors.append(f"{doc.key}: {a.error}")
            return
        mail = a.mail
        self._file_under_list(mail, doc)
        if mail.msgid in self._seen:
            return
        if (
            mail.msgid in self._stored
            if self._stored is not None
            else self.s.get(Message, mail.msgid) is not None
        ):
            return  # a cross-post or a re-sent copy: one message, its lists recorded above
        self._seen.add(mail.msgid)
        msg = Message(
            message_id=mail.msgid,
            subject=mail.subject[:4000],
            clean_subject=a.clean_subject,
            from_name=mail.from_name,
            from_email=mail.from_email,
            date=mail.date,
            in_reply_to=mail.in_reply_to,
            list_id=mail.list_id,
            kind="mail",
            series_version_id=None,
            series_index=mail.tags.index,
            patch_id=None,
            change_id=None,
            link_rule=None,
            document_id=doc.id,
        )
        self.s.add(msg)
        kind: str | None = None
        if a.stable is not None:
            kind = self._stable(a.stable, mail, counts)
        elif a.mm is not None:
            self._mm_note(a.mm, mail.msgid, mail.date, counts)
            kind = a.mm.kind
        elif a.tip:
            kind = "tip-commit"
        self._classify(msg, mail, kind, a)
        counts.messages += 1

    def _file_under_list(self, mail: Mail, doc: Document) -> None:
        name = self.list_name or _list_name(mail.list_id)
        if name:
            self._lists.append(
                {"message_id": mail.msgid, "list_name": name[:256], "document_id": doc.id}
            )

    def _classify(self, msg: Message, mail: Mail, kind: str | None, a: Analysed) -> None:
        tags = mail.tags
        if kind is None:
            if tags.is_reply:
                kind = "reply"
            elif a.has_diff or tags.is_cover:
                kind = "cover" if tags.is_cover else "patch"
            else:
                kind = "reply" if mail.in_reply_to else "mail"
        msg.kind = kind
        msg.patch_id, msg.paths_key = a.patch_id, a.paths_key
        # Series, versions and whose review a reply is are settled after the sync has stored
        # everything (tracker.ingest.series), so archive order cannot change them.
        self._trailers += own_rows(mail.msgid, a.reviews)
        if a.change_id and kind in ("patch", "cover", "mail", "reply"):
            self._trailers.append(change_id_row(mail.msgid, a.change_id))
        if a.trailers is not None and kind in (
            "patch",
            "cover",
            "backport",
            "review-patch",
            "autosel",
            "tip-commit",
        ):
            self._trailers += trailer_rows(a.trailers, message_id=mail.msgid)

    def _flush_trailers(self) -> None:
        # Trailers and lists refer to messages by foreign key: write them once those are flushed.
        self.s.flush()
        insert_ignore(self.s, Trailer, self._trailers)
        insert_ignore(self.s, MessageList, self._lists)
        self._trailers = []
        self._lists = []

    # -- stable mails ----------------------------------------------------------------------

    def _stable(self, parsed: stablemail.StableMail, mail: Mail, counts: IngestCounts) -> str:
        kind = parsed.kind
        event: tuple[str, str, str | None, dict[str, Any]] | None = None
        if isinstance(parsed, stablemail.QueueAdded):
            up = _sha(parsed.upstream)
            event = (
                "queued",
                parsed.branch,
                up,
                {
                    "subject": parsed.patch_subject,
                    "queue_file": parsed.queue_filename,
                    "form": parsed.form,
                },
            )
        elif isinstance(parsed, stablemail.FailedToApply):
            event = (
                "failed",
                parsed.branch,
                _sha(parsed.sha),
                {
                    "subject": parsed.patch_subject,
                    "reply_to": parsed.reply_to,
                    "dependencies": [[d.sha, d.subject] for d in parsed.dependencies],
                    "form": parsed.form,
                },
            )
        elif isinstance(parsed, stablemail.ReviewPatch):
            event = (
                "review",
                parsed.branch,
                _sha(parsed.upstream),
                {
                    "subject": parsed.subject,
                    "index": parsed.index,
                    "total": parsed.total,
                    "cover": parsed.cover_msgid,
                    "stable_dep_of": [d.sha for d in parsed.stable_dep_of],
                },
            )
        elif isinstance(parsed, stablemail.AutoselPatch):
            event = (
                "autosel",
                parsed.branch,
                _sha(parsed.upstream),
                {"subject": parsed.subject, "stable_base": parsed.stable_base},
            )
        elif isinstance(parsed, stablemail.BackportSubmission):
            event = (
                "backport-submitted",
                parsed.branch,
                _sha(parsed.upstream),
                {"subject": parsed.subject},
            )
        elif isinstance(parsed, stablemail.DropRequest | stablemail.Dropped):
            up = self._upstream_of_thread(parsed.parent_msgid)
            name = "drop-requested" if isinstance(parsed, stablemail.DropRequest) else "dropped"
            event = (name, parsed.branch or "", up, {"subject": parsed.patch_subject})
        elif isinstance(parsed, stablemail.ReviewCover):
            event = None
        if event and event[2]:
            name, branch, up, details = event
            self.s.add(
                StableEvent(
                    kind=name,
                    branch=branch,
                    upstream_sha=up,
                    message_id=mail.msgid,
                    at=mail.date,
                    details=json.dumps(details),
                )
            )
            counts.stable_events += 1
        return kind

    def _upstream_of_thread(self, parent: str | None) -> str | None:
        if not parent:
            return None
        self.s.flush()  # the mail it answers may be earlier in this same batch
        return self.s.scalar(
            select(StableEvent.upstream_sha).where(StableEvent.message_id == parent)
        )

    # -- -mm notifications -----------------------------------------------------------------

    def _mm_note(
        self, note: MmAdded | MmRemoved, msgid: str, date: datetime | None, counts: IngestCounts
    ) -> None:
        if isinstance(note, MmAdded):
            state, reason = note.branch, None
        else:
            state, reason = note.state, note.reason_text
        subject = note.patch_subject or (note.patch.subject if note.patch else None) or ""
        patch = self.s.get(MmPatch, note.filename)
        if patch is None:
            patch = MmPatch(
                filename=note.filename,
                subject=subject,
                state=state,
                change_id=None,
                updated_at=date,
            )
            self.s.add(patch)
        elif patch.updated_at is None or (date and date >= patch.updated_at):
            patch.state, patch.updated_at = state, date
        self.s.flush()
        self.s.add(
            MmState(filename=note.filename, state=state, reason=reason, at=date, message_id=msgid)
        )
        if note.patch is not None:
            # The embedded patch carries the trailers (Fixes:, Link:) tracker links by.
            self._trailers += trailer_rows(note.patch.trailers, message_id=msgid)
        counts.mm_states += 1

    # -- archives and feeds ----------------------------------------------------------------

    def _archive_text(self, text: str, doc: Document, counts: IngestCounts) -> None:
        msg = parse_archive_text(text)
        msgid = msg.msgid or f"archive-{doc.sha256[:32]}@tracker.invalid"
        # An -mm notification copied from a web archive is still an -mm notification.
        note = parse_mm_commits_text(text, msg.subject or "")
        if note is None:
            self._archive(msg, msgid, doc, counts)
            return
        if self.s.get(Message, msgid) is not None:
            return
        self.s.add(
            Message(
                message_id=msgid,
                subject=(msg.subject or note.filename)[:4000],
                from_name=msg.author_name,
                from_email=msg.author_email,
                date=msg.date,
                in_reply_to=None,
                list_id=None,
                kind=note.kind,
                series_version_id=None,
                series_index=None,
                patch_id=None,
                change_id=None,
                link_rule=None,
                document_id=doc.id,
            )
        )
        self.s.flush()
        self._mm_note(note, msgid, msg.date, counts)
        counts.messages += 1

    def _archive(
        self, msg: ArchiveMessage, msgid: str, doc: Document, counts: IngestCounts
    ) -> None:
        if self.s.get(Message, msgid) is not None:
            return
        self.s.add(
            Message(
                message_id=msgid,
                subject=(msg.subject or "")[:4000],
                from_name=msg.author_name,
                from_email=msg.author_email,
                date=msg.date,
                in_reply_to=msg.in_reply_to,
                list_id=None,
                kind="patch" if msg.diff else "reply",
                series_version_id=None,
                series_index=msg.tags.index if msg.tags else None,
                patch_id=msg.diff.patch_id if msg.diff else None,
                paths_key=diff_paths_key(msg.diff) if msg.diff else None,
                change_id=None,
                link_rule=None,
                document_id=doc.id,
            )
        )
        self.s.flush()
        insert_ignore(self.s, Trailer, trailer_rows(msg.trailers, message_id=msgid))
        counts.messages += 1

    def cgit_entries(self, entries: Sequence[CommitEntry], counts: IngestCounts) -> list[str]:
        """Store feed commits tracker has not seen; returns their shas (git should fetch them)."""
        new: list[str] = []
        for e in entries:
            sha = _sha(e.sha)
            if sha is None or self.s.get(Commit, sha) is not None:
                continue
            t = e.trailers
            self.s.add(
                Commit(
                    sha=sha,
                    subject=e.subject,
                    author_name=e.author_name or "",
                    author_email=e.author_email or "",
                    author_time=int((e.published or e.updated or _now()).timestamp()),
                    commit_time=int((e.updated or _now()).timestamp()),
                    message=e.message,
                    mainline=False,
                    upstream_sha=_sha(t.upstream),
                    upstream_rule="upstream-reference" if t.upstream else None,
                    is_revert=bool(t.reverts),
                )
            )
            self.s.flush()
            insert_ignore(self.s, Trailer, trailer_rows(t, commit_sha=sha))
            new.append(sha)
            counts.commits += 1
        return new


def _list_name(list_id: str | None) -> str | None:
    """``Sparc Linux <sparclinux.vger.kernel.org>`` -> ``sparclinux.vger.kernel.org``."""
    if not list_id:
        return None
    inner = list_id[list_id.rfind("<") + 1 :].split(">", 1)[0] if "<" in list_id else list_id
    return inner.strip().lower() or None


def clear_derived(s: Session) -> None:
    """Drop every row derived from documents, so ``reparse`` rebuilds them from scratch."""
    s.execute(delete(Trailer).where(Trailer.message_id.is_not(None)))
    s.execute(delete(StableEvent))
    s.execute(delete(MmState))
    s.execute(delete(MmPatch))
    s.execute(delete(MessageList))
    s.execute(delete(Message))
    s.execute(delete(SeriesVersion))
    s.execute(delete(Series))


def document_bytes(doc: Document) -> bytes:
    return zlib.decompress(doc.data)
