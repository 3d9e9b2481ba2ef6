"""Read a local public-inbox v2 mirror (``<inbox>/git/<N>.git``) incrementally.

Each epoch is a bare repository whose commits each add one message as the blob ``m``;
public-inbox removes a message with a commit whose tree holds the removed message as ``d``
(or, in older tooling, simply lacks ``m``). A cursor per epoch is the last commit read.

git does the work: one ``git rev-list`` and one long-running ``git cat-file --batch`` per epoch,
never one process per message. Only hex object names validated here reach git's stdin or argv.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

from tracker.errors import GitError, InvalidRevisionError, SourceError

_OID_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_EPOCH_RE = re.compile(r"^(\d+)\.git$")
# Requests written ahead of the reader; their bytes stay far below a pipe buffer, so writing
# them can never block while cat-file waits for us to drain its output.
_WINDOW = 256
# git's defaults map up to a gigabyte of pack per window and keep a 96 MiB delta cache: reading
# an epoch (about a hundred megabytes of pack) front to back needs neither, and with them the
# reader alone reached 128 MiB of RSS. These limits read the sparclinux epoch as fast.
_LEAN_READER = (
    "-c",
    "core.deltaBaseCacheLimit=2m",
    "-c",
    "core.packedGitWindowSize=4m",
    "-c",
    "core.packedGitLimit=8m",
)
_GIT_ENV = {"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}


class MirrorMessage(NamedTuple):
    epoch: str
    commit: str
    raw: bytes


@dataclass(frozen=True)
class Deletion:
    """A removal commit; ``raw`` is the removed message when the commit records it."""

    epoch: str
    commit: str
    raw: bytes | None


@dataclass(frozen=True)
class Rewrite:
    """An epoch whose history no longer contains the stored cursor (public-inbox-purge/-edit).

    ``cursor_known`` says whether the old commit still exists: if so only commits not reachable
    from it are re-read; if not, the whole epoch is.
    """

    epoch: str
    old_cursor: str
    new_head: str
    cursor_known: bool


@dataclass
class MirrorScan:
    """Iterate the new messages of every epoch; afterwards read :attr:`cursors`.

    ``cursors`` advances as messages are yielded (it covers every message handed out so far),
    so a caller that stores what it got and then stops early resumes where it stopped.
    """

    inbox_dir: Path
    cursors: dict[str, str]
    deletions: list[Deletion] = field(default_factory=list)
    rewrites: list[Rewrite] = field(default_factory=list)

    def __iter__(self) -> Iterator[MirrorMessage]:
        for name, gitdir in list_epochs(self.inbox_dir):
            yield from self._epoch(name, gitdir)

    def _epoch(self, name: str, gitdir: Path) -> Iterator[MirrorMessage]:
        head = _head(gitdir)
        if head is None:
            return
        old = self.cursors.get(name)
        if old == head:
            return
        exclude = self._resolve_cursor(name, gitdir, old, head)
        for commit, kind, raw in _read_range(gitdir, head, exclude):
            # Advanced before the yield: the cursor covers every message handed out so far.
            self.cursors[name] = commit
            if kind == "m":
                yield MirrorMessage(name, commit, raw or b"")
            else:
                self.deletions.append(Deletion(name, commit, raw))
        self.cursors[name] = head

    def _resolve_cursor(self, name: str, gitdir: Path, old: str | None, head: str) -> str | None:
        if old is None:
            return None
        known = _exists(gitdir, old)
        if known and _is_ancestor(gitdir, old, head):
            return old
        self.rewrites.append(Rewrite(name, old, head, known))
        return old if known else None


def iter_new_messages(inbox_dir: str | os.PathLike[str], cursors: Mapping[str, str]) -> MirrorScan:
    """Messages added since ``cursors`` (epoch name -> last commit read), oldest first.

    Iterating yields ``(epoch, commit, raw)``; the returned object then holds the updated
    ``cursors``, the ``deletions`` seen and any ``rewrites`` detected. Epoch names are the
    directory numbers ("0", "1", ...).
    """
    for epoch, value in cursors.items():
        _check_oid(value, f"cursor of epoch {epoch}")
    inbox = Path(inbox_dir)
    if not (inbox / "git").is_dir():
        raise SourceError(f"{inbox} is not a public-inbox v2 mirror (no git/ directory)")
    return MirrorScan(inbox, dict(cursors))


def list_epochs(inbox_dir: Path) -> list[tuple[str, Path]]:
    """The epoch repositories in numeric order (so 10.git comes after 9.git)."""
    found: list[tuple[int, Path]] = []
    for entry in (inbox_dir / "git").iterdir():
        match = _EPOCH_RE.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return [(str(num), path) for num, path in sorted(found)]


def _check_oid(value: str, what: str) -> str:
    if not _OID_RE.match(value):
        raise InvalidRevisionError(f"{what} is not a full hex object name: {value!r}")
    return value


# --- git plumbing -----------------------------------------------------------------------------


def _git(gitdir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", f"--git-dir={gitdir}", *args],
        capture_output=True,
        env={**os.environ, **_GIT_ENV},
        check=False,
    )


def _head(gitdir: Path) -> str | None:
    done = _git(gitdir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if done.returncode != 0:
        if not (gitdir / "HEAD").exists():
            raise SourceError(f"{gitdir} is not a git repository")
        return None  # an epoch with no commit yet
    return _check_oid(done.stdout.decode().strip(), f"HEAD of {gitdir}")


def _exists(gitdir: Path, oid: str) -> bool:
    return _git(gitdir, "cat-file", "-e", f"{oid}^{{commit}}").returncode == 0


def _is_ancestor(gitdir: Path, old: str, head: str) -> bool:
    done = _git(gitdir, "merge-base", "--is-ancestor", old, head)
    if done.returncode not in (0, 1):
        raise GitError(f"git merge-base failed in {gitdir}: {done.stderr.decode().strip()}")
    return done.returncode == 0


def _read_range(
    gitdir: Path, head: str, exclude: str | None
) -> Iterator[tuple[str, str, bytes | None]]:
    """(commit, "m" or "d", blob) for each commit in ``exclude..head``, oldest first."""
    revs = [head] if exclude is None else [head, f"^{exclude}"]
    with _Popen(gitdir, "rev-list", "--reverse", *revs, "--") as rev_list:
        assert rev_list.stdout is not None
        with _CatFile(gitdir) as cat:
            yield from _pipeline(rev_list.stdout, cat)
        _wait(rev_list, gitdir, "rev-list")


def _pipeline(commits: IO[bytes], cat: _CatFile) -> Iterator[tuple[str, str, bytes | None]]:
    # Asking for both names costs one "missing" line per commit and keeps responses in order
    # without a synchronous round trip for the (rare) removals.
    pending: deque[str] = deque()
    for line in commits:
        commit = _check_oid(line.decode().strip(), "rev-list output")
        cat.request(f"{commit}:m")
        cat.request(f"{commit}:d")
        pending.append(commit)
        if len(pending) >= _WINDOW:
            yield _classify(pending.popleft(), cat)
    while pending:
        yield _classify(pending.popleft(), cat)


def _classify(commit: str, cat: _CatFile) -> tuple[str, str, bytes | None]:
    added = cat.response()
    removed = cat.response()
    if added is not None:
        return commit, "m", added
    return commit, "d", removed


class _Popen(subprocess.Popen[bytes]):
    def __init__(self, gitdir: Path, *args: str) -> None:
        super().__init__(
            ["git", f"--git-dir={gitdir}", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **_GIT_ENV},
        )


def _wait(proc: subprocess.Popen[bytes], gitdir: Path, what: str) -> None:
    stderr = proc.stderr.read() if proc.stderr is not None else b""
    if proc.wait() != 0:
        raise GitError(f"git {what} failed in {gitdir}: {stderr.decode(errors='replace').strip()}")


class _CatFile:
    """One ``git cat-file --batch`` kept open for a whole epoch."""

    def __init__(self, gitdir: Path) -> None:
        self._gitdir = gitdir
        self._proc = subprocess.Popen(
            ["git", *_LEAN_READER, f"--git-dir={gitdir}", "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **_GIT_ENV},
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in = self._proc.stdin
        self._out = self._proc.stdout
        self._unflushed = False

    def __enter__(self) -> _CatFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._in.close()
        self._out.close()
        self._proc.wait()

    def request(self, spec: str) -> None:
        self._in.write(spec.encode() + b"\n")
        self._unflushed = True

    def response(self) -> bytes | None:
        if self._unflushed:
            # One flush per batch of requests rather than one write syscall per request.
            self._in.flush()
            self._unflushed = False
        header = self._out.readline()
        if not header:
            raise GitError(f"git cat-file ended early in {self._gitdir}")
        fields = header.split()
        if len(fields) == 2 and fields[1] == b"missing":
            return None
        if len(fields) != 3:
            raise GitError(f"unexpected cat-file output in {self._gitdir}: {header!r}")
        size = int(fields[2])
        data = self._out.read(size)
        self._out.read(1)  # the newline cat-file adds after each object
        if len(data) != size:
            raise GitError(f"short read from git cat-file in {self._gitdir}")
        return data
