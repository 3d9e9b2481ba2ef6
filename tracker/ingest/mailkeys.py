"""Path keys of stored mails that were ingested before mails carried one.

New mails get ``messages.paths_key`` when they are parsed. For older rows the key is derived
once from the stored raw document, with the parser that computed the mail's patch-id, and kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tracker.errors import SourceError
from tracker.ingest.archive import parse_archive_text
from tracker.ingest.mailstore import (
    ARCHIVE_TEXT,
    MAIL,
    MBOX,
    analyse,
    diff_paths_key,
    document_bytes,
)
from tracker.parse.mail import split_mbox
from tracker.store.models import Document, Message


def fill_message_keys(s: Session, msgids: Sequence[str]) -> dict[str, str]:
    """Key of each of ``msgids`` (all with a patch-id), computed from its document and stored.

    A message whose document is gone or no longer parses gets no key: it can still link to a
    commit whose patch-id is known, as before."""
    docs: dict[int, list[str]] = {}
    for msgid, doc_id in s.execute(
        select(Message.message_id, Message.document_id).where(Message.message_id.in_(msgids))
    ):
        if doc_id is not None:
            docs.setdefault(doc_id, []).append(msgid)
    found: dict[str, str] = {}
    for doc_id, wanted in docs.items():
        doc = s.get(Document, doc_id)
        if doc is None:
            continue
        try:
            keys = _document_keys(doc)
        except SourceError:
            continue
        found.update((m, keys[m]) for m in wanted if m in keys)
    if found:
        s.execute(update(Message), [{"message_id": m, "paths_key": k} for m, k in found.items()])
    return found


def _document_keys(doc: Document) -> dict[str, str]:
    data = document_bytes(doc)
    if doc.content_type == ARCHIVE_TEXT:
        msg = parse_archive_text(data.decode("utf-8", "replace"))
        # The name MailStore gives a page that shows no Message-ID.
        msgid = msg.msgid or f"archive-{doc.sha256[:32]}@tracker.invalid"
        return {msgid: diff_paths_key(msg.diff)} if msg.diff else {}
    raws = (
        [data] if doc.content_type == MAIL else split_mbox(data) if doc.content_type == MBOX else []
    )
    keys: dict[str, str] = {}
    for raw in raws:
        a = analyse(raw)
        if a.mail is not None and a.paths_key is not None:
            keys[a.mail.msgid] = a.paths_key
    return keys
