"""The first sync's bulk load: rows parsed in a worker process, indexes built after the load.

Both are speed-ups only: the rows must be the ones the syncing process makes itself, a failure
in the worker must be the sync's failure, and the schema after a first sync (even one killed
half way, then run again) must be exactly the migrated one.
"""

from __future__ import annotations

import gc
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import edited_demo_config, missing_branch_ref
from tests.gitutil import commit_files, init_repo
from tracker import usecases
from tracker.config import Config, TopicConfig, load_config
from tracker.errors import GitError, RepositoryError, StoreError
from tracker.gcpause import collector_paused
from tracker.gitio import GitRepo
from tracker.ingest import logrows
from tracker.ingest.branchlogs import BranchLogs
from tracker.ingest.gitlog import GitSync
from tracker.ingest.logrows import RowRules, log_rows
from tracker.sampleworld.demo import write_demo_config
from tracker.store import bulkload
from tracker.store.checkpoints import background_checkpoints
from tracker.store.db import WAL_CHECKPOINT_PAGES, Store
from tracker.store.models import Base, Source, Trailer
from tracker.topics import TopicClassifier

MESSAGES = [
    'mm: fix a leak\n\nFixes: 0123456789ab ("mm: add a leak")\nCc: stable@vger.kernel.org # 6.1\n'
    "Link: https://lore.kernel.org/r/leak@example.org",
    "net: tidy\n\nJust tidying.",
    'Revert "x"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.',
    "sparc: fix\n\ncommit 0123456789abcdef0123456789abcdef01234567 upstream.\n\nSigned-off-by: A",
]


def _demo_store(world_dir: tuple[object, Path]) -> tuple[Config, Store]:
    """The demo world's configuration and its store, migrated and empty."""
    cfg = load_config(write_demo_config(world_dir[1]))
    return cfg, usecases.open_store(cfg)


def _history(tmp_path: Path, n: int = 11) -> tuple[GitRepo, str]:
    repo = init_repo(tmp_path / "r")
    sha = ""
    for i in range(n):
        files = {f"{'mm' if i % 2 else 'net'}/f{i}.c": f"int x{i};\n", "README": f"{i}\n"}
        sha = commit_files(repo, files, MESSAGES[i % len(MESSAGES)])
    return GitRepo(repo), sha


def _rules(mainline: bool) -> RowRules:
    topic = TopicConfig(name="mm", paths=("mm/*",), keywords=("leak",))
    classifier = TopicClassifier([topic]) if mainline else None
    return RowRules(
        (r"^commit (?P<sha>[0-9a-f]{40}) upstream\.?\s*$",),
        r"stable@vger\.kernel\.org",
        mainline,
        classifier,
    )


@pytest.mark.parametrize("mainline", [True, False])
def test_the_worker_makes_the_rows_the_syncing_process_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mainline: bool
) -> None:
    repo, head = _history(tmp_path)
    monkeypatch.setattr(logrows, "CHUNK", 3)  # several messages, a short last one
    inline = list(log_rows(repo, head, [], _rules(mainline), worker=False))
    forked = list(log_rows(repo, head, [], _rules(mainline), worker=True))
    assert [len(c) for c in forked] == [3, 3, 3, 2]
    assert forked == inline
    rows = [r for c in inline for r in c]
    assert sum(len(trailers) for _, _, trailers, _ in rows) > 0
    assert bool(sum(len(topics) for _, _, _, topics in rows)) == mainline
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("worker", [True, False])
def test_a_git_failure_in_the_worker_is_the_logs_git_error(tmp_path: Path, worker: bool) -> None:
    repo, _ = _history(tmp_path, 2)
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitError, match="git log failed"):
        list(log_rows(repo, missing, [], _rules(True), worker=worker))
    assert not multiprocessing.active_children()


def test_a_consumer_that_stops_early_leaves_no_worker_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, head = _history(tmp_path)
    monkeypatch.setattr(logrows, "CHUNK", 1)
    chunks = log_rows(repo, head, [], _rules(True))
    assert len(next(chunks)) == 1
    chunks.close()
    assert not multiprocessing.active_children()


def _schema(store: Store) -> set[tuple[str, str, str, str]]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%'"
        )
        return {(t, n, tb, s or "") for t, n, tb, s in rows}


def _counts(store: Store) -> dict[str, int]:
    with store.session() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
            if t.name not in ("sync_runs", "sources")
        }


def test_first_sync_loads_without_indexes_and_leaves_the_migrated_schema(
    world_dir: tuple[object, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = world_dir
    cfg = load_config(write_demo_config(root))
    store = usecases.open_store(cfg)
    migrated = _schema(store)
    seen: list[int] = []
    real = GitSync.sync_mainline

    def watched(self: GitSync, stats: object) -> None:
        seen.append(len(migrated - _schema(store)))
        real(self, stats)  # type: ignore[arg-type]

    monkeypatch.setattr(GitSync, "sync_mainline", watched)
    usecases.sync(cfg, store)
    # The indexes with keys in random order were dropped; those SQLite appends to were kept.
    assert seen and seen[0] == 5
    assert _schema(store) == migrated
    with store.session() as s:
        assert s.scalar(select(Source).where(Source.name == bulkload.MARK)) is None
    # Not a first sync: nothing is dropped.
    seen.clear()
    usecases.sync(cfg, store)
    assert seen == [0]


def test_a_first_sync_killed_with_its_indexes_dropped_is_finished_by_the_next(
    world_dir: tuple[object, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = world_dir
    cfg_path = write_demo_config(root)
    cfg = load_config(cfg_path)
    store = usecases.open_store(cfg)
    migrated = _schema(store)

    def killed(self: GitSync, stats: object) -> None:
        raise KeyboardInterrupt  # as Ctrl-C (or a kill) between two phases

    with monkeypatch.context() as m:
        m.setattr(GitSync, "sync_release_tags", killed)
        with pytest.raises(KeyboardInterrupt):
            usecases.sync(cfg, store)
    assert _schema(store) != migrated  # left for the next run to rebuild
    usecases.sync(cfg, store)
    assert _schema(store) == migrated
    # The same rows as one sync that was never interrupted.
    fresh_path = root / "fresh.toml"
    fresh_path.write_text(cfg_path.read_text().replace("tracker.db", "fresh.db"))
    fresh_cfg = load_config(fresh_path)
    fresh = usecases.open_store(fresh_cfg)
    usecases.sync(fresh_cfg, fresh)
    assert _counts(store) == _counts(fresh)


def test_a_failed_first_sync_rebuilds_the_indexes_before_it_reports(
    world_dir: tuple[object, Path],
) -> None:
    cfg = edited_demo_config(world_dir[1], missing_branch_ref)
    store = usecases.open_store(cfg)
    migrated = _schema(store)
    with pytest.raises(RepositoryError, match="ref 'nope' not found"):
        usecases.sync(cfg, store)
    assert _schema(store) == migrated


def test_a_branch_log_started_ahead_is_used_only_if_the_guess_was_right(
    world_dir: tuple[object, Path],
) -> None:
    cfg, store = _demo_store(world_dir)
    b = cfg.branches[0]
    repo = GitRepo(cfg.repositories[b.repository].path)
    base, head = repo.resolve(b.base), repo.resolve(b.ref)
    rules = _rules(False)
    logs = BranchLogs(store, rules)
    logs.start(b, repo)  # a store that never saw the branch: its log is head ^base
    assert logs.take(b.name, repo, head, [base, head]) is None  # a wrong guess is ended
    assert not multiprocessing.active_children()
    logs.start(b, repo)
    started = logs.take(b.name, repo, head, [base])
    assert started is not None
    assert list(started) == list(log_rows(repo, head, [base], rules, worker=False))
    logs.start(b, repo)
    logs.close()
    assert not multiprocessing.active_children()


_STALLED_PARENT = """
import sys, time
from pathlib import Path
from tracker.gitio import GitRepo
from tracker.ingest import logrows
logrows.CHUNK, logrows._AHEAD = 1, 1
rules = logrows.RowRules((), "x", False)
rows = logrows.LogRows(GitRepo(Path(sys.argv[1])), sys.argv[2], [], rules)
print(rows._proc.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # ended, not yet reaped by whoever inherited it


def test_a_worker_whose_parent_is_killed_ends_instead_of_holding_on(tmp_path: Path) -> None:
    """A sync killed outright (SIGKILL) leaves no worker behind holding the run lock: with the
    parent's end of the pipe closed in the worker too, its next send fails and it exits."""
    import signal
    import subprocess
    import sys
    import time

    repo = init_repo(tmp_path / "r")
    head = ""
    for i in range(8):  # each message alone fills a pipe: the worker blocks on its third send
        head = commit_files(repo, {f"f{i}.c": f"int x{i};\n"}, f"c{i}\n\n" + "x" * 70000)
    root = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen(
        [sys.executable, "-c", _STALLED_PARENT, str(repo), head],
        stdout=subprocess.PIPE,
        cwd=root,
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    time.sleep(1)
    assert not _gone(worker)  # stalled on the full pipe, as a busy parent would leave it
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while not _gone(worker):
        assert time.monotonic() < deadline, "the worker outlived its parent"
        time.sleep(0.05)


def test_references_go_unchecked_only_in_the_loading_session(
    world_dir: tuple[object, Path],
) -> None:
    """The first load skips SQLite's foreign key checks; every later session has them back."""
    cfg, store = _demo_store(world_dir)
    usecases.sync(cfg, store)
    orphan = Trailer(commit_sha="f" * 40, kind="fixes", value="0123456789ab")
    with store.session() as s:
        bulkload.unchecked_references(s)
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 0
        s.add(orphan)
        s.flush()
        s.rollback()
    for _ in range(3):  # whichever pooled connection a session gets
        with pytest.raises(IntegrityError), store.session() as s:
            assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
            s.add(Trailer(commit_sha="f" * 40, kind="fixes", value="0123456789ab"))
    store.close()


def test_indexes_rebuilt_beside_a_reading_block_are_there_after_it_and_a_failure_is_raised(
    world_dir: tuple[object, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store = _demo_store(world_dir)
    migrated = _schema(store)
    assert bulkload.defer_indexes(store)
    # Reads go on while the thread holds the write lock.
    with bulkload.restored_beside(store), store.session() as s:
        assert s.scalar(select(func.count()).select_from(Source)) == 1
    assert _schema(store) == migrated
    assert bulkload.defer_indexes(store)

    def broken(_store: Store) -> None:
        raise StoreError("disk full while building an index")

    monkeypatch.setattr(bulkload, "restore_indexes", broken)
    with pytest.raises(StoreError, match="disk full"), bulkload.restored_beside(store):
        pass
    store.close()


def test_a_sync_runs_its_passes_with_the_collector_paused_and_turns_it_back_on(
    world_dir: tuple[object, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, store = _demo_store(world_dir)
    seen: dict[str, bool] = {}
    for name in ("sync_mainline", "sync_branch", "sync_patch_ids", "resolve_edges"):
        real = getattr(GitSync, name)

        def spy(*args: object, _real: Any = real, _name: str = name) -> object:
            seen[_name] = gc.isenabled()
            return _real(*args)

        monkeypatch.setattr(GitSync, name, spy)
    usecases.sync(cfg, store)
    assert seen == dict.fromkeys(seen, False) and len(seen) == 4
    assert gc.isenabled()
    store.close()


def test_the_collector_pause_ends_with_the_block_and_keeps_a_disabled_collector_off() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failed load")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # whoever turned it off turns it back on
    finally:
        gc.enable()


def test_wal_checkpoints_run_in_a_thread_during_the_block_and_commits_take_them_back_after(
    world_dir: tuple[object, Path],
) -> None:
    _, store = _demo_store(world_dir)

    def checkpointers() -> int:
        return sum(t.name == "wal-checkpoints" for t in threading.enumerate())

    with background_checkpoints(store):
        assert checkpointers() == 1
        with store.session() as s:
            assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
            s.add(Source(name="test:checkpoints", kind="test", cursor="1"))
    assert checkpointers() == 0
    with store.session() as s:
        assert s.execute(text("PRAGMA wal_autocheckpoint")).scalar() == WAL_CHECKPOINT_PAGES
        assert s.scalar(select(Source.cursor).where(Source.name == "test:checkpoints")) == "1"
    store.close()
