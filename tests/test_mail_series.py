"""Series, versions, reviews, cross-posts and posting status on real mail (a corpus slice).

``tests/data/corpus/sparclinux-slice.bundle`` is a public-inbox v2 epoch cut from the real
sparclinux archive by ``benchmarks/corpus_slice.py``: 37 real messages in archive order ("Fix
lazy mmu mode" v1 and v2 with the replies acking them, the six "Nesting support for lazy MMU
mode" covers, and "MVME: Adopt standard RTC driver" v2..v4, whose v3 1/2 was archived before its
cover). Other archive orders and a second list are built from the same real bytes.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.test_cli import run
from tracker import usecases
from tracker.config import Config, load_config, parse_config
from tracker.sampleworld.demo import write_demo_config
from tracker.sampleworld.history import SampleWorld
from tracker.store.db import Store
from tracker.store.models import Message, MessageList, Series, SeriesVersion, Trailer
from tracker.usecases import write_dashboard

SLICE = Path(__file__).parent / "data" / "corpus" / "sparclinux-slice.bundle"

LAZY_V1 = "20250302145555.3236789-1-ryan.roberts@arm.com"
LAZY_V1_2 = "20250302145555.3236789-3-ryan.roberts@arm.com"
LAZY_V2 = "20250303141542.3371656-1-ryan.roberts@arm.com"
ACK_DAVID = "4af46304-cf25-4c4a-8e4a-3a566193ca62@redhat.com"
ACK_ANDREAS = "b2b03b41-8442-4c68-9c00-05e524673fe0@gaisler.com"
ACK_JUERGEN = "d0de16ad-33d5-4878-8e7f-8e8cd1d44585@suse.com"
MVME_V3_COVER = "cover.1728377511.git.fthain@linux-m68k.org"
MVME_V3_1 = "41e9f3f320a70b4d0946f7e0c3622f1dd1e8791c.1728377511.git.fthain@linux-m68k.org"


def _git(gitdir: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={gitdir}", *args], input=data, capture_output=True, check=True
    ).stdout


def _slice_messages(tmp: Path) -> list[bytes]:
    """The slice's raw messages, in archive order."""
    src = tmp / "slice.git"
    if not src.exists():
        subprocess.run(["git", "clone", "-q", "--mirror", str(SLICE), str(src)], check=True)
    shas = _git(src, "rev-list", "--reverse", "HEAD").decode().split()
    return [_git(src, "cat-file", "blob", f"{sha}:m") for sha in shas]


def _msgid(raw: bytes) -> str:
    found = re.search(rb"^message-id:\s*<([^>]+)>", raw.split(b"\n\n", 1)[0], re.I | re.M)
    assert found is not None
    return found.group(1).decode()


def make_inbox(inbox: Path, messages: list[bytes]) -> Path:
    """A public-inbox v2 epoch holding ``messages`` in this order (one commit each)."""
    gitdir = inbox / "git" / "0.git"
    gitdir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", str(gitdir)], check=True)
    add_messages(inbox, messages)
    return inbox


def add_messages(inbox: Path, messages: list[bytes]) -> None:
    gitdir = inbox / "git" / "0.git"
    head = subprocess.run(
        ["git", f"--git-dir={gitdir}", "rev-parse", "--verify", "-q", "refs/heads/master"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    stream: list[bytes] = []
    for n, raw in enumerate(messages, start=1):
        parent = (
            (b"from :%d\n" % (2 * n - 1)) if n > 1 else (f"from {head}\n".encode() if head else b"")
        )
        stream += [
            b"blob\nmark :%d\ndata %d\n" % (2 * n, len(raw)),
            raw,
            b"\ncommit refs/heads/master\nmark :%d\n" % (2 * n + 1),
            b"committer t <t@example.org> 1700000000 +0000\ndata 1\nm\n",
            parent,
            b"M 100644 :%d m\n\n" % (2 * n),
        ]
    _git(gitdir, "fast-import", "--quiet", data=b"".join(stream))


def _store(tmp: Path, inboxes: dict[str, Path]) -> tuple[Config, Store]:
    cfg = parse_config(
        {
            "database": {"url": f"sqlite:///{tmp / 'tracker.db'}"},
            "repositories": [{"name": "linux", "path": str(tmp)}],
            "sources": [
                {"name": name, "kind": "public-inbox-mirror", "path": str(path)}
                for name, path in inboxes.items()
            ],
        },
        None,
    )
    return cfg, usecases.open_store(cfg)


def state(store: Store) -> dict[str, Any]:
    """What the series pass decided, in a form two stores can be compared by."""
    with store.session() as s:
        versions = sorted(
            (
                series.key,
                sv.version,
                sv.total,
                sv.complete,
                sv.cover_message_id,
                tuple(
                    sorted(
                        s.scalars(
                            select(Message.message_id).where(Message.series_version_id == sv.id)
                        )
                    )
                ),
            )
            for sv, series in s.execute(
                select(SeriesVersion, Series).join(Series, Series.id == SeriesVersion.series_id)
            )
        )
        reviews = sorted(
            (t.message_id or "", t.kind, t.value, t.note or "")
            for t in s.scalars(
                select(Trailer).where(Trailer.kind.in_(("acked-by", "reviewed-by", "tested-by")))
            )
        )
        lists = sorted((r.message_id, r.list_name) for r in s.scalars(select(MessageList)))
        kinds = sorted((m.message_id, m.kind) for m in s.scalars(select(Message)))
    return {"versions": versions, "reviews": reviews, "lists": lists, "kinds": kinds}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Store, list[bytes]]:
    tmp = tmp_path_factory.mktemp("corpus")
    messages = _slice_messages(tmp)
    inbox = make_inbox(tmp / "sparclinux", messages)
    cfg, store = _store(tmp, {"sparclinux": inbox})
    (rep,) = usecases.sync_sources(cfg, store)
    assert rep.failed is None and not rep.counts.errors
    return cfg, store, messages


def _version(store: Store, key: str) -> dict[int, tuple[int, bool, list[tuple[int | None, str]]]]:
    with store.session() as s:
        series = s.scalar(select(Series).where(Series.key == key))
        assert series is not None, key
        out = {}
        for sv in s.scalars(select(SeriesVersion).where(SeriesVersion.series_id == series.id)):
            members = sorted(
                (m.series_index, m.kind)
                for m in s.scalars(select(Message).where(Message.series_version_id == sv.id))
            )
            out[sv.version] = (sv.total, sv.complete, members)
        return out


def _reviews(store: Store, msgid: str) -> set[tuple[str, str, str]]:
    with store.session() as s:
        return {
            (t.kind, t.value, t.note or "")
            for t in s.scalars(
                select(Trailer).where(
                    Trailer.message_id == msgid,
                    Trailer.kind.in_(("acked-by", "reviewed-by", "tested-by")),
                )
            )
        }


def test_fix_lazy_mmu_mode_one_series_complete_with_acks(corpus: Any) -> None:
    _, store, _ = corpus
    versions = _version(store, "fix lazy mmu mode|ryan.roberts@arm.com")
    assert versions[1] == (
        4,
        True,
        [(0, "cover"), (1, "patch"), (2, "patch"), (3, "patch"), (4, "patch")],
    )
    assert versions[2][:2] == (5, True) and len(versions[2][2]) == 6
    # Both Acked-by on v1 2/4, each with who gave it and in which message.
    assert _reviews(store, LAZY_V1_2) == {
        ("acked-by", "David Hildenbrand <david@redhat.com>", ACK_DAVID),
        ("acked-by", "Andreas Larsson <andreas@gaisler.com>", ACK_ANDREAS),
    }
    # An ack on v2's cover letter applies to every patch of v2 (as b4 applies it).
    with store.session() as s:
        v2_patches = list(
            s.scalars(
                select(Message.message_id)
                .join(SeriesVersion, SeriesVersion.id == Message.series_version_id)
                .where(SeriesVersion.cover_message_id == LAZY_V2, Message.kind == "patch")
            )
        )
    assert len(v2_patches) == 5
    for msgid in v2_patches:
        assert ("acked-by", "Juergen Gross <jgross@suse.com>", ACK_JUERGEN) in _reviews(
            store, msgid
        )


def test_nesting_support_v1_to_v6_linked(corpus: Any) -> None:
    _, store, _ = corpus
    versions = _version(store, "nesting support for lazy mmu mode|kevin.brodsky@arm.com")
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]
    assert [versions[v][0] for v in range(1, 7)] == [7, 7, 13, 12, 12, 14]
    # Only the covers reached sparclinux: no version is complete here.
    assert not any(v[1] for v in versions.values())
    with store.session() as s:
        series = s.scalar(select(Series).where(Series.key.startswith("nesting support")))
        assert series is not None and series.latest_version == 6


def test_patch_archived_before_its_cover(corpus: Any) -> None:
    _, store, messages = corpus
    order = [_msgid(raw) for raw in messages]
    first_patch, cover = order.index(MVME_V3_1), order.index(MVME_V3_COVER)
    assert first_patch < cover  # the real archive order this test is about
    with store.session() as s:
        patch = s.get(Message, MVME_V3_1)
        assert patch is not None and patch.series_version_id is not None
        sv = s.get(SeriesVersion, patch.series_version_id)
        assert sv is not None and sv.cover_message_id == MVME_V3_COVER and sv.version == 3
    versions = _version(store, "mvme: adopt standard rtc driver|fthain@linux-m68k.org")
    assert sorted(versions) == [2, 3, 4]
    assert versions[3][2] == [(0, "cover"), (1, "patch")]


def test_cover_without_counter_and_patches_threaded_under_patch_two(corpus: Any) -> None:
    _, store, _ = corpus
    # "[PATCH v2] Implement close-on-fork" has no 0/N; v2 1/4 answers it, so it is v2's cover.
    # v1's cover has no tag at all (not a posting); its 1/4 still forms v1, linked by subject.
    versions = _version(store, "fs: implement close-on-fork|nate.karstens@garmin.com")
    assert versions == {
        1: (4, False, [(1, "patch")]),
        2: (4, False, [(0, "cover"), (1, "patch")]),
    }
    # Miaoqian Lin's 1/3 and 3/3 answer 2/3 (sent first): one complete posting, named by 1/3.
    versions = _version(
        store, "sparc: kernel: fix reference leak in jbusmc_probe|linmq006@gmail.com"
    )
    assert versions == {1: (3, True, [(1, "patch"), (2, "patch"), (3, "patch")])}


def test_renamed_series_linked_by_b4_change_id(corpus: Any) -> None:
    _, store, _ = corpus
    # v4 "getfsxattrat and setfsxattrat", v5 (posted three times) "file_getattr and
    # file_setattr": one series because both covers carry one b4 change-id.
    versions = _version(
        store, "fs: introduce getfsxattrat and setfsxattrat syscalls|aalbersh@redhat.com"
    )
    assert {v: (total, len(members)) for v, (total, _, members) in versions.items()} == {
        4: (3, 1),
        5: (7, 3),
    }
    with store.session() as s:
        series = s.scalar(select(Series).where(Series.key.startswith("fs: introduce getfs")))
        assert series is not None
        assert series.subject == "fs: introduce file_getattr and file_setattr syscalls"


def test_archive_order_and_sync_count_do_not_matter(corpus: Any, tmp_path: Path) -> None:
    _, store, messages = corpus
    expected = state(store)
    # Newest first: every reply before its patch, every patch before its cover.
    backwards = make_inbox(tmp_path / "rev" / "sparclinux", list(reversed(messages)))
    cfg, other = _store(tmp_path / "rev", {"sparclinux": backwards})
    usecases.sync_sources(cfg, other)
    assert state(other) == expected
    # The archive in three syncs, cut inside threads: later mails complete earlier series.
    inbox = make_inbox(tmp_path / "steps" / "sparclinux", messages[:3])
    cfg, stepped = _store(tmp_path / "steps", {"sparclinux": inbox})
    usecases.sync_sources(cfg, stepped)
    add_messages(inbox, messages[3:10])
    usecases.sync_sources(cfg, stepped)
    add_messages(inbox, messages[10:])
    usecases.sync_sources(cfg, stepped)
    assert state(stepped) == expected


def test_cross_post_keeps_every_list(tmp_path: Path) -> None:
    messages = _slice_messages(tmp_path)
    cover = next(m for m in messages if _msgid(m) == LAZY_V1)
    # The same bytes on a second list, and a copy as that list delivered it (its own List-Id).
    relabelled = cover.replace(
        b"List-Id: <sparclinux.vger.kernel.org>", b"List-Id: <linux-mm.kvack.org>"
    )
    assert relabelled != cover
    sparc = make_inbox(tmp_path / "sparclinux", messages)
    mm = make_inbox(tmp_path / "linux-mm", [cover])
    arch = make_inbox(tmp_path / "linux-arch", [relabelled])
    cfg, store = _store(tmp_path, {"sparc": sparc, "mm": mm, "arch": arch})
    usecases.sync_sources(cfg, store)
    with store.session() as s:
        lists = set(
            s.scalars(select(MessageList.list_name).where(MessageList.message_id == LAZY_V1))
        )
        copies = s.scalars(select(Message).where(Message.message_id == LAZY_V1)).all()
    assert lists == {"sparclinux", "linux-mm", "linux-arch"}
    assert len(copies) == 1


def test_posting_status_before_merge(corpus: Any) -> None:
    cfg, store, _ = corpus
    rep = usecases.posting_status(cfg, store, "Fix lazy mmu mode")
    assert isinstance(rep, usecases.PostingStatus)
    p = rep.posting
    assert [v.version for v in p.versions] == [1, 2]
    assert all(v.complete for v in p.versions) and rep.commits == ()
    assert p.lists == ("sparclinux",)
    v1_2 = next(x for x in p.versions[0].patches if x.index == 2)
    assert {(r.who, r.message_id) for r in v1_2.reviews} == {
        ("David Hildenbrand <david@redhat.com>", ACK_DAVID),
        ("Andreas Larsson <andreas@gaisler.com>", ACK_ANDREAS),
    }
    stable = [x.index for x in p.versions[1].patches if x.cc_stable]
    assert stable == [1, 3, 4]
    # A reply's Message-ID and a lore URL name the same posting.
    for query in (f"<{ACK_DAVID}>", f"https://lore.kernel.org/sparclinux/{LAZY_V1_2}/T/#u"):
        again = usecases.posting_status(cfg, store, query)
        assert isinstance(again, usecases.PostingStatus)
        assert again.posting.subject == p.subject


def test_status_cli_for_a_posting(corpus: Any, tmp_path: Path) -> None:
    cfg, _, _ = corpus
    toml = tmp_path / "tracker.toml"
    toml.write_text(
        f'[database]\nurl = "{cfg.database_url}"\n'
        f'[[repositories]]\nname = "linux"\npath = "{tmp_path}"\n'
    )
    p = run("--config", str(toml), "status", "--json", f"<{LAZY_V1}>")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["posting"]["latest_version"] == 2 and data["commits"] == []
    p = run("--config", str(toml), "status", "Nesting support for lazy MMU mode")
    assert p.returncode == 0, p.stderr
    assert "latest: v6, 0 of 14 patches, incomplete" in p.stdout
    p = run("--config", str(toml), "status", "no such posting anywhere")
    assert p.returncode == 5


def _links(store: Store) -> list[tuple[str, int | None, str | None]]:
    with store.session() as s:
        return sorted((m.message_id, m.change_id, m.link_rule) for m in s.scalars(select(Message)))


def test_one_sync_equals_two(world_dir: tuple[SampleWorld, Path]) -> None:
    """``tracker sync`` reads mail before git; the first sync must already link and plan right."""
    _, root = world_dir
    cfg = load_config(write_demo_config(root))
    toml = str(root / "tracker.toml")
    assert run("--config", toml, "sync", "--quiet").returncode == 0

    def snapshot() -> tuple[Any, ...]:
        store = usecases.open_store(cfg)
        try:
            plans = {
                b.name: json.loads(run("--config", toml, "plan", b.name, "--json").stdout)
                for b in cfg.branches
            }
            return plans, _links(store), state(store)
        finally:
            store.close()

    first = snapshot()
    assert any(rule for _, _, rule in first[1])  # mails linked to commits after one sync
    assert run("--config", toml, "sync", "--quiet").returncode == 0
    assert snapshot() == first


def test_dashboard_lists_pending_series(corpus: Any, tmp_path: Path) -> None:
    cfg, store, _ = corpus
    out = tmp_path / "site"
    write_dashboard(cfg, store, out, clock=lambda: datetime(2026, 1, 28, tzinfo=UTC))
    pending = json.loads((out / "index.json").read_text())["pending"]
    lazy = next(p for p in pending if p["subject"] == "Fix lazy mmu mode")
    assert (lazy["version"], lazy["versions"], lazy["patches"], lazy["complete"]) == (2, 2, 5, True)
    assert lazy["cc_stable"] == 3 and lazy["merged"] == 0 and lazy["lists"] == ["sparclinux"]
    nesting = next(p for p in pending if p["subject"] == "Nesting support for lazy MMU mode")
    assert (nesting["version"], nesting["patches"], nesting["total"]) == (6, 0, 14)
    # Newest posting first.
    assert pending[0]["subject"] == "Nesting support for lazy MMU mode"
    html = (out / "index.html").read_text()
    assert 'id="pending"' in html and "Fix lazy mmu mode" in html
