"""Sync every configured mail/feed source into the store, incrementally and safely from cron.

Feeds are triggers (a new entry makes tracker fetch its thread); mails and git are the data. Each
source keeps a cursor (HTTP validators, last entry date, last mirror commit per epoch) that is
committed together with what it brought, so a run that dies half way resumes where it stopped.
A source that fails is recorded in the run log and the other sources still sync.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.config import Config, SourceConfig
from tracker.errors import SourceError
from tracker.ingest.atom import parse_cgit_atom, parse_feed
from tracker.ingest.identity import link_identities
from tracker.ingest.lore import search_url, thread_url
from tracker.ingest.mailstore import (
    ARCHIVE_TEXT,
    CGIT_ATOM,
    MAIL,
    MBOX,
    Analysed,
    IngestCounts,
    MailStore,
)
from tracker.ingest.pimirror import iter_new_messages
from tracker.ingest.series import settle
from tracker.net import Expect, Fetcher, FetchSettings, Validators
from tracker.progress import Reporter
from tracker.store.db import Store
from tracker.store.models import Source, SyncRun

Progress = Callable[[str, int], None]
Mapper = Callable[[Callable[[bytes], Analysed], list[bytes]], Iterable[Analysed]]
_BATCH = 2000
_POOL_MIN = 200


@dataclass
class SourceReport:
    name: str
    counts: IngestCounts = field(default_factory=IngestCounts)
    not_modified: int = 0
    fetched: int = 0
    failed: str | None = None
    fetch_shas: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


class SourceSync:
    def __init__(
        self,
        config: Config,
        store: Store,
        progress: Progress | None = None,
        fetcher_factory: Callable[[], Fetcher] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.progress = progress or (lambda _p, _n: None)
        self._fetcher_factory = fetcher_factory
        self._fetcher: Fetcher | None = None
        # Validators are stored only once the content they describe is safely recorded.
        self._last_validators: dict[str, tuple[str | None, str | None]] = {}
        self._pool: ProcessPoolExecutor | None = None

    def fetcher(self) -> Fetcher:
        """The one HTTP client, created on first use so offline sources never need it."""
        if self._fetcher is None:
            if self._fetcher_factory is not None:
                self._fetcher = self._fetcher_factory()
            else:
                h = self.config.http
                self._fetcher = Fetcher(
                    FetchSettings(
                        connect_timeout=min(h.timeout, 10.0),
                        read_timeout=h.timeout,
                        retries=h.retries,
                        max_bytes=h.max_bytes,
                        max_concurrency=h.concurrency,
                    )
                )
        return self._fetcher

    def run(self, only: str | None = None) -> list[SourceReport]:
        reports = []
        for src in self.config.sources:
            if only and src.name != only:
                continue
            reports.append(self.sync_one(src))
        settle_and_link(self.store)
        return reports

    def sync_one(self, src: SourceConfig) -> SourceReport:
        report = SourceReport(src.name)
        with self.store.session() as s:
            run = SyncRun(source=src.name, started_at=_now(), status="running", added=0)
            s.add(run)
        try:
            handler = _HANDLERS[src.kind]
            handler(self, src, report)
        except SourceError as exc:
            report.failed = str(exc)
        except BaseException as exc:
            # Interrupted or a bug: what the handler committed stays, the run says it stopped.
            with self.store.session() as s:
                r = s.get(SyncRun, run.id)
                if r is not None:
                    r.finished_at = _now()
                    r.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                    r.error = str(exc) or type(exc).__name__
            raise
        with self.store.session() as s:
            r = s.get(SyncRun, run.id)
            assert r is not None
            r.finished_at = _now()
            r.added = report.counts.messages + report.counts.stable_events + report.counts.commits
            r.status = "failed" if report.failed else "ok"
            r.error = report.failed or ("; ".join(report.counts.errors[:5]) or None)
        return report

    # -- helpers ---------------------------------------------------------------------------

    def _source_row(self, s: Session, src: SourceConfig) -> Source:
        row = s.scalar(select(Source).where(Source.name == src.name))
        if row is None:
            row = Source(name=src.name, kind=src.kind, url=src.url or str(src.path))
            s.add(row)
            s.flush()
        return row

    def _store_bytes(
        self, src: SourceConfig, key: str, data: bytes, ctype: str, report: SourceReport
    ) -> None:
        with self.store.session() as s:
            row = self._source_row(s, src)
            ms = MailStore(
                s,
                self.config.upstream_patterns,
                row.id,
                list_of(src),
                stable_list=self.config.stable_list,
            )
            doc = ms.add_document(key, data, ctype)
            if doc is None:
                report.counts.duplicates += 1
                return
            report.counts.add(ms.ingest(doc, data))

    # -- local sources ---------------------------------------------------------------------

    def local_files(self, src: SourceConfig, report: SourceReport) -> None:
        path = _require_path(src)
        ctype = {"mbox": MBOX, "maildir": MAIL, "archive-text": ARCHIVE_TEXT}[src.kind]
        files = list(_files(path))
        if isinstance(self.progress, Reporter):
            self.progress.expect(src.name, len(files))
        for f in files:
            try:
                data = f.read_bytes()
            except OSError as exc:
                report.counts.errors.append(f"{f}: {exc}")
                continue
            self._store_bytes(src, str(f), data, ctype, report)
            self.progress(src.name, 1)

    def mirror(self, src: SourceConfig, report: SourceReport) -> None:
        path = _require_path(src)
        with self.store.session() as s:
            cursors = json.loads(self._source_row(s, src).cursor or "{}")
        scan = iter_new_messages(path, cursors)
        batch: list[tuple[str, bytes]] = []

        def flush() -> None:
            with self.store.session() as s:
                row = self._source_row(s, src)
                ms = MailStore(
                    s,
                    self.config.upstream_patterns,
                    row.id,
                    list_of(src),
                    stable_list=self.config.stable_list,
                )
                report.counts.add(ms.ingest_mails(batch, self._mapper(len(batch))))
                # The cursor moves in the same transaction as the messages it covers.
                row.cursor = json.dumps(scan.cursors)
                row.last_success = _now()
            self.progress(src.name, len(batch))
            batch.clear()

        try:
            for m in scan:
                batch.append((f"{path}#{m.epoch}:{m.commit}", m.raw))
                if len(batch) >= _BATCH:
                    flush()
            flush()
        finally:
            self._close_pool()

    def stable_queue(self, src: SourceConfig, report: SourceReport) -> None:
        from tracker.ingest.queuesync import sync_queue

        with self.store.session() as s:
            res = sync_queue(self.config, s, self._source_row(s, src), src)
        report.counts.documents += res.read
        report.counts.stable_events += res.changed
        report.counts.errors += res.errors
        self.progress(src.name, res.read)

    def _mapper(self, n: int) -> Mapper | None:
        """Parse big batches on every core: parsing, not SQLite, is the cost per message."""
        if n < _POOL_MIN or (os.cpu_count() or 1) < 2:
            return None
        if self._pool is None:
            # spawn, not fork: a forked worker would inherit open pipes (the mirror reader's
            # git cat-file stdin), and git would then wait forever for an EOF.
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=os.cpu_count(), mp_context=ctx, initializer=_ignore_interrupts
            )
        pool = self._pool
        return lambda fn, raws: pool.map(fn, raws, chunksize=32)

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # -- HTTP sources ----------------------------------------------------------------------

    def _save_validators(self, src: SourceConfig, url: str) -> None:
        res = self._last_validators.pop(url, None)
        if res is None:
            return
        with self.store.session() as s:
            row = self._source_row(s, src)
            row.etag, row.last_modified, row.last_success = res[0], res[1], _now()

    def _get(
        self, src: SourceConfig, url: str, report: SourceReport, *, mbox: bool = False
    ) -> bytes | None:
        with self.store.session() as s:
            row = self._source_row(s, src)
            validators = Validators(etag=row.etag, last_modified=row.last_modified)
        res = self.fetcher().get(
            url, validators=validators, expect=Expect.MBOX if mbox else Expect.ANY
        )
        if res.not_modified:
            report.not_modified += 1
            return None
        report.fetched += 1
        self._last_validators[url] = (res.etag, res.last_modified)
        return bytes(res.content)

    def inbox_feed(self, src: SourceConfig, report: SourceReport) -> None:

        url = src.url or ""
        if src.kind == "lore-search":
            if not src.list or not src.query:
                raise SourceError(f"source '{src.name}': lore-search needs 'list' and 'query'")
            url = search_url(url, src.list, src.query)
        data = self._get(src, url, report)
        if data is None:
            return
        feed = parse_feed(data)
        with self.store.session() as s:
            since = self._source_row(s, src).cursor
        newest = since
        for entry in sorted(feed.inbox_entries, key=lambda e: e.updated or _now()):
            stamp = entry.updated.isoformat() if entry.updated else None
            if since and stamp and stamp <= since:
                continue
            self._thread(src, _lore_base(entry.url or url), entry.msgid, report)
            if stamp and (newest is None or stamp > newest):
                newest = stamp
                with self.store.session() as s:
                    self._source_row(s, src).cursor = newest
        self._save_validators(src, url)

    def _thread(self, src: SourceConfig, base: str, msgid: str, report: SourceReport) -> None:
        url = thread_url(base, msgid)
        try:
            res = self.fetcher().get(url, expect=Expect.MBOX)
        except SourceError as exc:
            report.counts.errors.append(str(exc))
            return
        report.fetched += 1
        self._store_bytes(src, url, bytes(res.content), MBOX, report)

    def lore_thread(self, src: SourceConfig, report: SourceReport) -> None:
        if not src.query:
            raise SourceError(f"source '{src.name}': lore-thread needs 'query' (a Message-ID)")
        url = thread_url(src.url or "", src.query.strip("<>"))
        data = self._get(src, url, report, mbox=True)
        if data is not None:
            self._store_bytes(src, url, data, MBOX, report)
            self._save_validators(src, url)

    def cgit_feed(self, src: SourceConfig, report: SourceReport) -> None:
        url = src.url or ""
        data = self._get(src, url, report)
        if data is None:
            return
        with self.store.session() as s:
            row = self._source_row(s, src)
            ms = MailStore(
                s, self.config.upstream_patterns, row.id, stable_list=self.config.stable_list
            )
            doc = ms.add_document(url, data, CGIT_ATOM)
            if doc is not None:
                try:
                    report.fetch_shas = ms.cgit_entries(parse_cgit_atom(data), report.counts)
                    report.counts.documents += 1
                except SourceError as exc:
                    doc.error = str(exc)
                    report.counts.errors.append(f"{url}: {exc}")
            else:
                report.counts.duplicates += 1
        self._save_validators(src, url)


def settle_and_link(store: Store) -> None:
    """What needs every message of the sync: series and reviews, then identity links."""
    with store.session() as s:
        settle(s)
    with store.session() as s:
        link_identities(s)


def list_of(src: SourceConfig) -> str | None:
    """The list a source stands for: its ``list``, or a mirror's inbox directory name."""
    if src.list:
        return src.list
    if src.kind == "public-inbox-mirror" and src.path is not None:
        return src.path.resolve().name
    return None


def _require_path(src: SourceConfig) -> Path:
    if src.path is None:
        raise SourceError(f"source '{src.name}': kind {src.kind} needs 'path'")
    if not src.path.exists():
        raise SourceError(f"source '{src.name}': path does not exist: {src.path}")
    return src.path


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for f in sorted(path.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            yield f


def _lore_base(url: str) -> str:
    """``https://lore.kernel.org/linux-mm/<msgid>/`` -> ``https://lore.kernel.org``; a local
    mirror served under a prefix keeps it (everything before the list name)."""
    parts = urlsplit(url)
    segs = [p for p in parts.path.split("/") if p]
    prefix = "/".join(segs[:-2]) if len(segs) >= 2 else ""
    return f"{parts.scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")


_HANDLERS: dict[str, Callable[[SourceSync, SourceConfig, SourceReport], None]] = {
    "mbox": SourceSync.local_files,
    "maildir": SourceSync.local_files,
    "archive-text": SourceSync.local_files,
    "public-inbox-mirror": SourceSync.mirror,
    "public-inbox-atom": SourceSync.inbox_feed,
    "lore-search": SourceSync.inbox_feed,
    "lore-thread": SourceSync.lore_thread,
    "cgit-atom": SourceSync.cgit_feed,
    "stable-queue": SourceSync.stable_queue,
}


def _ignore_interrupts() -> None:
    """Ctrl-C reaches every process of the terminal's group: workers leave it to the parent,
    which stops the pool and reports one line, instead of each printing a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
