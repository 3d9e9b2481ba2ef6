"""Sources end to end: real documents into the store, real HTTP on 127.0.0.1, a real v2 mirror."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.loopback import LoopbackServer, Reply, gzip_bytes, html_page, truncated
from tests.test_pimirror import Epoch
from tracker import usecases
from tracker.config import Config, parse_config
from tracker.ingest.lore import thread_url
from tracker.store.db import Store
from tracker.store.models import (
    Base,
    Commit,
    Document,
    Message,
    MmPatch,
    MmState,
    Series,
    SeriesVersion,
    StableEvent,
    SyncRun,
    Trailer,
)

SAMPLES = Path(__file__).parent / "data" / "samples"


def _config(tmp: Path, sources: list[dict[str, object]]) -> Config:
    return parse_config(
        {
            "database": {"url": f"sqlite:///{tmp / 'tracker.db'}"},
            "repositories": [{"name": "linux", "path": str(tmp)}],
            "http": {"timeout": 2, "retries": 1},
            "sources": sources,
        },
        None,
    )


def _counts(store: Store) -> dict[str, int]:
    with store.session() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
            if t.name != "sync_runs"
        }


@pytest.fixture(scope="module")
def samples_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Store]:
    """Every sample document, ingested once through the offline source kinds."""
    tmp = tmp_path_factory.mktemp("samples")
    archives = tmp / "archives"
    archives.mkdir()
    for f in SAMPLES.glob("*.txt"):
        shutil.copy(f, archives)
    cfg = _config(
        tmp,
        [
            {"name": "lore", "kind": "mbox", "path": str(SAMPLES / "lore")},
            {"name": "stable-mail", "kind": "maildir", "path": str(SAMPLES / "stable-mail")},
            {"name": "stable-queue", "kind": "maildir", "path": str(SAMPLES / "stable-queue")},
            {"name": "archives", "kind": "archive-text", "path": str(archives)},
        ],
    )
    store = usecases.open_store(cfg)
    reports = usecases.sync_sources(cfg, store)
    assert all(r.failed is None and not r.counts.errors for r in reports), reports
    return cfg, store


def _event(store: Store, kind: str, sha: str) -> StableEvent:
    with store.session() as s:
        ev = s.scalars(
            select(StableEvent).where(StableEvent.kind == kind, StableEvent.upstream_sha == sha)
        ).first()
        assert ev is not None, (kind, sha)
        return ev


def _trailers(store: Store, msgid: str, kind: str) -> list[str]:
    with store.session() as s:
        return list(
            s.scalars(
                select(Trailer.value).where(Trailer.message_id == msgid, Trailer.kind == kind)
            )
        )


def test_stable_mail_samples(samples_store: tuple[Config, Store]) -> None:
    _, store = samples_store
    failed = _event(store, "failed", "59d9094df3d79443937add8700b2ef1a866b1081")
    assert failed.branch == "6.6"
    assert json.loads(failed.details)["dependencies"] == []
    review = _event(store, "review", "fea18c686320a53fce7ad62a87a3e1d10ad02f31")
    assert review.branch == "6.1"
    assert (json.loads(review.details)["index"], json.loads(review.details)["total"]) == (78, 79)
    assert _trailers(store, review.message_id, "fixes") == ["2ba3e6947aed"]


def test_stable_queue_samples(samples_store: tuple[Config, Store]) -> None:
    _, store = samples_store
    with store.session() as s:
        ups = set(
            s.scalars(
                select(Trailer.value).where(
                    Trailer.kind == "upstream", Trailer.message_id.is_not(None)
                )
            )
        )
        fixes = set(s.scalars(select(Trailer.value).where(Trailer.kind == "fixes")))
    assert "691ee97e1a9de0cdb3efb893c1f180e3f4a35e32" in ups  # 6.6.88 mm-fix-lazy-mmu-docs
    assert "eb61ad14c459b54f71f76331ca35d12fa3eb8f98" in ups  # 6.12.24 sparc set_ptes
    assert {"bcc6cc832573", "1a10a44dfc1d"} <= fixes


def test_lore_mbox_samples(samples_store: tuple[Config, Store]) -> None:
    _, store = samples_store
    with store.session() as s:
        kinds: dict[str, int] = {
            k: n for k, n in s.execute(select(Message.kind, func.count()).group_by(Message.kind))
        }
        events: dict[str, int] = {
            k: n
            for k, n in s.execute(select(StableEvent.kind, func.count()).group_by(StableEvent.kind))
        }
        lazy = s.scalar(
            select(Series).where(Series.key == "fix lazy mmu mode|ryan.roberts@arm.com")
        )
        assert lazy is not None and lazy.latest_version == 2
        versions = {
            v.version: v.total
            for v in s.scalars(select(SeriesVersion).where(SeriesVersion.series_id == lazy.id))
        }
        v2_patches = s.scalar(
            select(func.count())
            .select_from(Message)
            .join(SeriesVersion, SeriesVersion.id == Message.series_version_id)
            .where(
                SeriesVersion.series_id == lazy.id,
                SeriesVersion.version == 2,
                Message.kind == "patch",
            )
        )
    assert versions == {1: 4, 2: 5}
    assert v2_patches == 5
    assert kinds["tip-commit"] == 102
    assert kinds["review-patch"] == 158
    assert events["failed"] == 29  # 28 in the linuxppc mbox + the 6.6 eml
    assert events["queued"] == 13  # the 4.19 "added" mails that name an upstream sha


def test_mm_commits_and_archive_samples(samples_store: tuple[Config, Store]) -> None:
    _, store = samples_store
    with store.session() as s:
        mm = s.get(MmPatch, "mm-fix-lazy-mmu-docs-and-usage.patch")
        assert mm is not None and mm.state == "mm-unstable"
        state = s.scalar(select(MmState).where(MmState.filename == mm.filename))
        assert state is not None
        pipermail = s.scalars(
            select(Message).where(Message.subject.contains("Ensure lazy_mmu_mode never nests"))
        ).first()
        assert pipermail is not None and pipermail.kind == "patch"
    assert _trailers(store, state.message_id, "fixes") == ["bcc6cc832573"]


def test_reparse_rebuilds_the_same_records(samples_store: tuple[Config, Store]) -> None:
    cfg, store = samples_store
    before = _counts(store)
    usecases.reparse(cfg, store)
    assert _counts(store) == before


def test_second_local_sync_adds_nothing(samples_store: tuple[Config, Store]) -> None:
    cfg, store = samples_store
    before = _counts(store)
    reports = usecases.sync_sources(cfg, store)
    assert _counts(store) == before
    assert sum(r.counts.duplicates for r in reports) == 13


# -- HTTP ------------------------------------------------------------------------------------

LAZY_MBOX = SAMPLES / "lore" / "sparclinux_fix-lazy-mmu-mode_2025-03.mbox"
COVER = "20250303141542.3371656-1-ryan.roberts@arm.com"


def _atom(server: LoopbackServer, msgids: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<entry><author><name>R</name><email>r@example.org</email></author>"
        f"<title>[PATCH] x</title><updated>{when}</updated>"
        f'<link href="{server.url("/linux-mm/" + m + "/")}"/>'
        f'<id>urn:uuid:{i:032x}</id><content type="xhtml"><div>x</div></content></entry>'
        for i, (m, when) in enumerate(msgids)
    )
    return (
        '<?xml version="1.0" encoding="us-ascii"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>linux-mm</title>'
        f"<id>mailto:linux-mm@kvack.org</id><updated>2025-03-04T00:00:00Z</updated>{entries}"
        "</feed>"
    ).encode()


def _thread_path(server: LoopbackServer, msgid: str) -> str:
    return urlsplit(thread_url(server.base_url, msgid)).path


def test_atom_feed_triggers_thread_fetch_then_304(
    tmp_path: Path, loopback_server: LoopbackServer
) -> None:
    srv = loopback_server
    feed = srv.route(
        "/linux-mm/new.atom",
        Reply(
            body=_atom(srv, [(COVER, "2025-03-03T14:15:35Z")]),
            content_type="application/atom+xml",
            etag='"v1"',
        ),
    )
    srv.route(
        _thread_path(srv, COVER),
        Reply(body=gzip_bytes(LAZY_MBOX.read_bytes()), content_type="application/gzip"),
    )
    cfg = _config(tmp_path, [{"name": "mm", "kind": "public-inbox-atom", "url": feed}])
    store = usecases.open_store(cfg)
    (rep,) = usecases.sync_sources(cfg, store)
    assert rep.failed is None and rep.counts.messages == 28
    first = _counts(store)
    (rep2,) = usecases.sync_sources(cfg, store)
    assert rep2.not_modified == 1 and rep2.counts.documents == 0
    assert _counts(store) == first
    feed_requests = srv.requests_for("/linux-mm/new.atom")
    assert feed_requests[-1].headers.get("if-none-match") == '"v1"'
    assert feed_requests[-1].status == 304
    assert len(srv.requests_for(_thread_path(srv, COVER))) == 1


def test_cgit_feed_records_commits_and_asks_for_fetch(
    tmp_path: Path, loopback_server: LoopbackServer
) -> None:
    url = loopback_server.route(
        "/stable/linux.git/atom/",
        Reply(
            body=(SAMPLES / "cgit-atom-tlb-h-v6.12.80.xml").read_bytes(),
            content_type="application/atom+xml",
            last_modified="Sat, 21 Nov 2026 10:00:00 GMT",
        ),
    )
    cfg = _config(tmp_path, [{"name": "cgit", "kind": "cgit-atom", "url": url}])
    store = usecases.open_store(cfg)
    (rep,) = usecases.sync_sources(cfg, store)
    assert rep.counts.commits == 10 and len(rep.fetch_shas) == 10
    with store.session() as s:
        c = s.scalars(select(Commit).where(Commit.sha.startswith("da06bb0ca45b"))).one()
        assert c.upstream_sha is not None and c.upstream_sha.startswith("8ce720d5bd91")
        fixes = s.scalars(
            select(Trailer.value).where(Trailer.commit_sha == c.sha, Trailer.kind == "fixes")
        ).all()
        assert fixes == ["1013af4f585f"]
    (rep2,) = usecases.sync_sources(cfg, store)
    assert rep2.not_modified == 1
    assert loopback_server.requests[-1].headers.get("if-modified-since")


def test_bad_documents_are_recorded_and_the_rest_goes_on(
    tmp_path: Path, loopback_server: LoopbackServer
) -> None:
    srv = loopback_server
    good, html, cut = COVER, "html@example.org", "cut@example.org"
    feed = srv.route(
        "/linux-mm/new.atom",
        Reply(
            body=_atom(
                srv,
                [
                    (html, "2025-03-01T00:00:00Z"),
                    (cut, "2025-03-02T00:00:00Z"),
                    (good, "2025-03-03T00:00:00Z"),
                ],
            ),
            content_type="application/atom+xml",
        ),
    )
    srv.route(_thread_path(srv, html), Reply(body=html_page(), content_type="text/html"))
    srv.route(
        _thread_path(srv, cut),
        Reply(body=truncated(gzip_bytes(LAZY_MBOX.read_bytes())), content_type="application/gzip"),
    )
    srv.route(
        _thread_path(srv, good),
        Reply(body=gzip_bytes(LAZY_MBOX.read_bytes()), content_type="application/gzip"),
    )
    not_xml = srv.route("/broken/new.atom", Reply(body=b"<html>oops", content_type="text/html"))
    cfg = _config(
        tmp_path,
        [
            {"name": "broken", "kind": "public-inbox-atom", "url": not_xml},
            {"name": "mm", "kind": "public-inbox-atom", "url": feed},
        ],
    )
    store = usecases.open_store(cfg)
    broken, mm = usecases.sync_sources(cfg, store)
    assert broken.failed is not None
    assert mm.failed is None
    errors = " | ".join(mm.counts.errors)
    assert "expected an mbox, got HTML" in errors and "truncated gzip" in errors
    assert mm.counts.messages == 28
    with store.session() as s:
        runs = {r.source: r.status for r in s.scalars(select(SyncRun))}
    assert runs == {"broken": "failed", "mm": "ok"}


def test_public_inbox_mirror_incremental(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    epoch = Epoch(inbox, 0)
    raw = LAZY_MBOX.read_bytes().split(b"\nFrom ")
    mails = [raw[0]] + [b"From " + r for r in raw[1:]]
    bodies = [m.split(b"\n", 1)[1] for m in mails]  # drop the mbox From_ line
    epoch.add(*bodies[:20])
    cfg = _config(tmp_path, [{"name": "mirror", "kind": "public-inbox-mirror", "path": str(inbox)}])
    store = usecases.open_store(cfg)
    (rep,) = usecases.sync_sources(cfg, store)
    assert rep.counts.messages == 20
    before = _counts(store)
    (rep2,) = usecases.sync_sources(cfg, store)
    assert rep2.counts.messages == 0 and _counts(store) == before
    epoch.add(*bodies[20:])
    (rep3,) = usecases.sync_sources(cfg, store)
    assert rep3.counts.messages == len(bodies) - 20
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == len(bodies)


def test_large_mirror_batch_goes_through_the_parse_pool(tmp_path: Path) -> None:
    """Enough messages for the process pool; a worker inheriting git's pipes would hang here."""
    import threading

    from benchmarks.pimirror_gen import generate

    generate(tmp_path / "inbox", 400, 10_000, 7)
    cfg = _config(
        tmp_path, [{"name": "m", "kind": "public-inbox-mirror", "path": str(tmp_path / "inbox")}]
    )
    store = usecases.open_store(cfg)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.extend(usecases.sync_sources(cfg, store)))
    worker.start()
    worker.join(timeout=180)
    assert not worker.is_alive(), "mirror ingest with the parse pool did not finish"
    (rep,) = result
    assert rep.counts.messages == 400 and not rep.counts.errors  # type: ignore[attr-defined]


def test_b4_links_versions_and_collects_review_trailers(
    samples_store: tuple[Config, Store],
) -> None:
    _, store = samples_store
    with store.session() as s:
        lazy = s.scalar(
            select(Series).where(Series.key == "fix lazy mmu mode|ryan.roberts@arm.com")
        )
        assert lazy is not None
        complete = {
            v.version: v.complete
            for v in s.scalars(select(SeriesVersion).where(SeriesVersion.series_id == lazy.id))
        }
        v1_2 = s.get(Message, "20250302145555.3236789-3-ryan.roberts@arm.com")  # v1 2/4
        assert v1_2 is not None and v1_2.subject.startswith("[PATCH v1 2/4]")
        acks = set(
            s.scalars(
                select(Trailer.value).where(
                    Trailer.message_id == v1_2.message_id, Trailer.kind == "acked-by"
                )
            )
        )
    assert complete == {1: True, 2: True}
    assert any("David Hildenbrand" in a for a in acks)
    assert any("Andreas Larsson" in a for a in acks)
