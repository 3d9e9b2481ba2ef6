"""Commits of a ``git log`` turned into store rows, parsed in a worker process where possible.

A first sync of a kernel-sized history spends as much Python time parsing records, trailers and
topics as SQLite spends inserting the rows. A forked worker parses while the syncing process
inserts, so parsing, inserting and git itself run on different cores instead of one after another.
Where fork is not available (or for a log too small to be worth a process) the same rows are
made in the syncing process itself.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import multiprocessing
import queue
import signal
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tracker.errors import GitError
from tracker.gitio import GitRepo, LogEntry
from tracker.parse.trailers import Trailers, parse_trailers
from tracker.pathkey import paths_key
from tracker.store.trailer_rows import trailer_tuples
from tracker.topics import TopicClassifier

# Rows travel as tuples in these column orders, marshalled (both ends are one interpreter; a
# fifth cheaper than pickle to read back): a dict per row would double what crosses the pipe
# and cost the inserting process more to read than the worker saved it.
# The last three (PLACED) come last: the inserting process appends them, since only it knows
# the next mainline order and, on a first sync, each commit's first release.
PLACED = ("mainline_order", "first_release", "release_index")
COMMIT_COLUMNS = (
    "sha",
    "subject",
    "author_name",
    "author_email",
    "author_time",
    "commit_time",
    "message",
    "mainline",
    "patch_id",
    "paths_key",
    "upstream_sha",
    "upstream_rule",
    "is_revert",
    "change_id",
    "link_rule",
    *PLACED,
)
TRAILER_COLUMNS = ("commit_sha", "message_id", "kind", "value", "subject", "note")  # trailer_tuples
TOPIC_COLUMNS = ("sha", "topic", "rule")
Row = tuple[Any, ...]
# (sha, commits row without its PLACED columns, trailer rows, commit_topics rows)
CommitRows = tuple[str, Row, list[Row], list[Row]]

CHUNK = 1000  # commits per message from the worker, and between two progress reports
# Chunks the worker may run ahead of the inserts (a few hundred kilobytes each).
_AHEAD = 64


@dataclass(frozen=True)
class RowRules:
    """What turns a log entry into rows: mainline commits are classified into topics and keep
    their message only when tracker reasons over it; stable commits always keep it."""

    upstream_patterns: Sequence[str]
    stable_list: str
    mainline: bool
    classifier: TopicClassifier | None = None


def interesting(t: Trailers) -> bool:
    return bool(
        t.fixes or t.upstream or t.stable_dep_of or t.cc_stable or t.reverts or t.link_msgids
    )


def commit_rows(e: LogEntry, rules: RowRules) -> CommitRows:
    t = parse_trailers(e.message, rules.upstream_patterns, rules.stable_list)
    subject = e.subject
    matches = rules.classifier.classify(subject, e.message, e.paths) if rules.classifier else []
    keep = not rules.mainline or interesting(t) or bool(matches)
    row = (
        e.sha,
        subject,
        e.author_name,
        e.author_email,
        e.author_time,
        e.commit_time,
        e.message if keep else None,
        rules.mainline,
        None,
        paths_key(e.paths),
        t.upstream,
        "upstream-reference" if t.upstream else None,
        bool(t.reverts),
        None,
        None,
    )
    topics = [(e.sha, m.topic, m.rule) for m in matches]
    return e.sha, row, trailer_tuples(t, e.sha), topics


def _chunks(entries: Iterable[LogEntry], rules: RowRules) -> Iterator[list[CommitRows]]:
    chunk: list[CommitRows] = []
    for e in entries:
        chunk.append(commit_rows(e, rules))
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def log_rows(
    repo: GitRepo, include: str, exclude: Sequence[str], rules: RowRules, *, worker: bool = True
) -> Generator[list[CommitRows], None, None]:
    """The rows of ``repo.log(include, exclude)``, oldest first, in chunks of up to CHUNK
    commits; GitError as the log itself raises it."""
    if not worker or not can_fork():
        yield from _chunks(repo.log(include, exclude), rules)
        return
    yield from LogRows(repo, include, exclude, rules)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class LogRows:
    """The rows of one log, parsed by a worker process from the moment this is made, so that a
    sync can start the next log before it stores the rows of the last. Iterated once; close()
    ends the worker early."""

    def __init__(
        self, repo: GitRepo, include: str, exclude: Sequence[str], rules: RowRules
    ) -> None:
        self.repo, self.include, self.exclude = repo, include, tuple(exclude)
        ctx = multiprocessing.get_context("fork")
        self._receiver, sender = ctx.Pipe(duplex=False)
        # Objects the child inherits are never collected there: a database connection found
        # unreachable in the child must not be closed by it (that would close the parent's).
        gc.freeze()
        try:
            self._proc = ctx.Process(
                target=_work,
                args=(sender, self._receiver, repo, include, list(exclude), rules),
                name="tracker-log-rows",
                daemon=True,
            )
            self._proc.start()
        finally:
            gc.unfreeze()
        sender.close()  # the child holds the write end: its exit is our end of input
        # Read by a thread as the worker sends: a worker blocked on a full pipe would parse
        # only as fast as the syncing process stores.
        self._messages: queue.Queue[bytes] = queue.Queue(maxsize=_AHEAD)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._pump, name="log-rows-read", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._receiver.recv_bytes()
            except (EOFError, OSError):
                data = b""
            self._messages.put(data)
            if not data:
                return

    def __iter__(self) -> Iterator[list[CommitRows]]:
        try:
            while True:
                data = self._messages.get()
                if not data:
                    raise GitError(f"git log in {self.repo.path}: the parsing worker died")
                kind, payload = marshal.loads(data)
                if kind == "rows":
                    yield payload
                elif kind == "end":
                    return
                elif kind == "git-error":
                    raise GitError(payload)
                else:
                    raise GitError(f"git log in {self.repo.path}: parsing failed: {payload}")
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        if self._proc.is_alive():
            self._proc.terminate()  # a consumer that stopped early (or failed) wants no more
        while self._reader.is_alive():  # it ends at the end of input; make room for that
            try:
                self._messages.get_nowait()
            except queue.Empty:
                self._reader.join(0.01)
        self._proc.join()
        self._receiver.close()


def _work(
    out: Connection,
    parents_end: Connection,
    repo: GitRepo,
    include: str,
    exclude: list[str],
    rules: RowRules,
) -> None:
    """The worker: parse the log and send its rows. Ctrl-C is the parent's to handle (it ends
    this process); failures are sent over, never printed here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # terminate() ends it, quietly
    # With the parent's end of the pipe closed here too, a parent that dies (even by SIGKILL)
    # makes the next send fail, and this process ends instead of keeping the run's lock.
    parents_end.close()
    try:
        for chunk in _chunks(repo.log(include, exclude), rules):
            out.send_bytes(marshal.dumps(("rows", chunk)))
        message: tuple[str, Any] = ("end", None)
    except GitError as exc:
        message = ("git-error", str(exc))
    except Exception as exc:  # handed to the parent, which raises it as a sync failure
        message = ("error", f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(OSError):  # the parent stopped listening: nothing left to tell
        out.send_bytes(marshal.dumps(message))
