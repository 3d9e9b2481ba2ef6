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
import multiprocessing
import pickle
import signal
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tracker.errors import GitError
from tracker.gitio import GitRepo, LogEntry, read_ahead
from tracker.parse.trailers import Trailers, parse_trailers
from tracker.pathkey import paths_key
from tracker.store.trailer_rows import trailer_rows
from tracker.topics import TopicClassifier

# Rows travel as tuples in these column orders: a pickled dict per row would double what
# crosses the pipe and cost the inserting process more to unpickle than the worker saved it.
# mainline_order comes last: the inserting process appends it, since only it knows the next one.
COMMIT_COLUMNS = (
    "sha",
    "subject",
    "author_name",
    "author_email",
    "author_time",
    "commit_time",
    "message",
    "mainline",
    "first_release",
    "release_index",
    "patch_id",
    "paths_key",
    "upstream_sha",
    "upstream_rule",
    "is_revert",
    "change_id",
    "link_rule",
    "mainline_order",
)
TRAILER_COLUMNS = ("commit_sha", "message_id", "kind", "value", "subject", "note")
TOPIC_COLUMNS = ("sha", "topic", "rule")
Row = tuple[Any, ...]
# (sha, commits row without its mainline_order, trailer rows, commit_topics rows)
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
    matches = rules.classifier.classify(e.subject, e.message, e.paths) if rules.classifier else []
    keep = not rules.mainline or interesting(t) or bool(matches)
    row = (
        e.sha,
        e.subject,
        e.author_name,
        e.author_email,
        e.author_time,
        e.commit_time,
        e.message if keep else None,
        rules.mainline,
        None,
        None,
        None,
        paths_key(e.paths),
        t.upstream,
        "upstream-reference" if t.upstream else None,
        bool(t.reverts),
        None,
        None,
    )
    trailers = [tuple(r[c] for c in TRAILER_COLUMNS) for r in trailer_rows(t, commit_sha=e.sha)]
    topics = [(e.sha, m.topic, m.rule) for m in matches]
    return e.sha, row, trailers, topics


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
    if not worker or "fork" not in multiprocessing.get_all_start_methods():
        yield from _chunks(repo.log(include, exclude), rules)
        return
    yield from _from_worker(repo, include, exclude, rules)


def _from_worker(
    repo: GitRepo, include: str, exclude: Sequence[str], rules: RowRules
) -> Iterator[list[CommitRows]]:
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    # Objects the child inherits are never collected there: a database connection found
    # unreachable in the child must not be closed by it (that would close the parent's too).
    gc.freeze()
    try:
        proc = ctx.Process(
            target=_work,
            args=(sender, repo, include, list(exclude), rules),
            name="tracker-log-rows",
            daemon=True,
        )
        proc.start()
    finally:
        gc.unfreeze()
    sender.close()  # the child holds the write end: its exit is our end of input

    def receive() -> bytes:
        try:
            return receiver.recv_bytes()
        except (EOFError, OSError):
            return b""

    messages = read_ahead(receive, _AHEAD)
    try:
        for data in messages:
            if not data:
                raise GitError(f"git log in {repo.path}: the parsing worker ended unexpectedly")
            kind, payload = pickle.loads(data)
            if kind == "rows":
                yield payload
            elif kind == "end":
                return
            elif kind == "git-error":
                raise GitError(payload)
            else:
                raise GitError(f"git log in {repo.path}: parsing failed: {payload}")
    finally:
        if proc.is_alive():
            proc.terminate()  # a consumer that stopped early (or failed) wants no more rows
        messages.close()
        proc.join()
        receiver.close()


def _work(
    out: Connection, repo: GitRepo, include: str, exclude: list[str], rules: RowRules
) -> None:
    """The worker: parse the log and send its rows. Ctrl-C is the parent's to handle (it ends
    this process); failures are sent over, never printed here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for chunk in _chunks(repo.log(include, exclude), rules):
            out.send_bytes(pickle.dumps(("rows", chunk), pickle.HIGHEST_PROTOCOL))
        message: tuple[str, Any] = ("end", None)
    except GitError as exc:
        message = ("git-error", str(exc))
    except Exception as exc:  # handed to the parent, which raises it as a sync failure
        message = ("error", f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(OSError):  # the parent stopped listening: nothing left to tell
        out.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
