"""Read-side access to git repositories through GitPython (the only GitPython user).

Every revision handed to git is either a validated hex object name or a ref/tag name from the
configuration, which is checked not to look like an option. Nothing that came from a mail is ever
passed here unvalidated: callers use :func:`check_sha` first.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import functools
import io
import os
import queue
import re
import subprocess
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, cast

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from tracker.errors import GitError, RepositoryError, UnknownCommitError
from tracker.pathkey import unquote_path
from tracker.revisions import HEX, check_refname, check_sha

_RS = "\x1e"
_US = "\x1f"
_LOG_FORMAT = f"--format={_RS}%H{_US}%P{_US}%an{_US}%ae{_US}%at{_US}%ct{_US}%B{_US}"
# Paths as the tree holds them: a user's core.quotePath must not change what a path is called
# (topic rules and path keys compare names across clones).
_RAW_PATHS = ("-c", "core.quotePath=false")


class LogEntry(NamedTuple):
    """One commit of a streamed log. A named tuple, not a dataclass: a first sync makes one
    per commit of a history, and a tuple is made in a fifth of the time (0.4 against 2 us)."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_time: int
    commit_time: int
    message: str
    paths: tuple[str, ...]

    @property
    def subject(self) -> str:
        return self.message.partition("\n")[0].strip()


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # "blob", "tree" or "commit"
    oid: str
    name: str


class GitRepo:
    # Bytes per read of a streamed git output; tests shrink it to put boundaries everywhere.
    read_size = 1 << 20
    # Reads a streamed git output may run ahead of its consumer (up to 32 MiB at read_size).
    read_ahead = 32

    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(str(path))
        except (NoSuchPathError, InvalidGitRepositoryError):
            raise RepositoryError(f"not a git repository: {path}") from None
        self.path = path
        self.git = self.repo.git

    def _run(self, *args: str) -> str:
        try:
            return str(self.git.execute(["git", *args]))
        except GitCommandError as exc:
            _refused(exc, self.path)
            detail = (exc.stderr or "").strip().splitlines()
            raise GitError(
                f"git {args[0]} failed in {self.path}: {detail[-1] if detail else exc}"
            ) from None

    def resolve(self, rev: str) -> str:
        """Full sha of a commit named by a sha or a ref; UnknownCommitError if there is none."""
        name = rev if HEX.match(rev.lower()) else check_refname(rev)
        try:
            out = self.git.execute(
                ["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"]
            )
        except GitCommandError as exc:
            _refused(exc, self.path)
            raise UnknownCommitError(f"unknown revision '{rev}' in {self.path}") from None
        return str(out).strip()

    def try_resolve(self, rev: str) -> str | None:
        try:
            return self.resolve(rev)
        except UnknownCommitError:
            return None

    def is_ancestor(self, older: str, newer: str) -> bool:
        older, newer = check_sha(older), check_sha(newer)
        try:
            self.git.execute(["git", "merge-base", "--is-ancestor", older, newer])
        except GitCommandError as exc:
            if exc.status == 1:
                return False
            raise GitError(f"git merge-base failed in {self.path}: {exc.stderr}") from None
        return True

    def tags(self) -> dict[str, str]:
        """Tag name -> commit sha (annotated tags peeled)."""
        out = self._run(
            "for-each-ref", "--format=%(refname:short) %(objectname) %(*objectname)", "refs/tags"
        )
        tags: dict[str, str] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                tags[parts[0]] = parts[2] if len(parts) == 3 else parts[1]
        return tags

    def rev_list(self, include: str, exclude: Sequence[str] = ()) -> list[str]:
        args = ["rev-list", check_sha(include)]
        args += [f"^{check_sha(x)}" for x in exclude]
        return self._run(*args).split()

    def count(self, include: str, exclude: Sequence[str] = ()) -> int:
        """How many commits :meth:`log` with the same arguments yields."""
        args = ["rev-list", "--count", check_sha(include)]
        args += [f"^{check_sha(x)}" for x in exclude]
        return int(self._run(*args).strip() or 0)

    def fetch(self, remote: str) -> None:
        self._run("fetch", "--quiet", "--end-of-options", check_refname(remote))

    def log(
        self, include: str, exclude: Sequence[str] = (), *, with_paths: bool = True
    ) -> Iterator[LogEntry]:
        """Stream commits oldest first (topological), without loading the history in memory."""
        args = ["git", *_RAW_PATHS, "log", "--reverse", "--topo-order", "--no-color", _LOG_FORMAT]
        if with_paths:
            args += ["--name-only", "--no-renames", "-c", "--diff-merges=off"]
        args.append(check_sha(include))
        args += [f"^{check_sha(x)}" for x in exclude]
        args.append("--")
        yield from self._stream_log(args)

    def _stream_log(self, args: list[str]) -> Iterator[LogEntry]:
        popen = self._popen(args)
        stdout = cast(IO[bytes], popen.stdout)
        # One decoder for the whole stream: a character split across two reads is decoded
        # whole, so what a sync stores does not depend on where the pipe's reads fall.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        buf = ""
        _widen_pipe(stdout)
        # read1: whatever the pipe holds (up to read_size), so the reading thread, which needs
        # the GIL once per read, moves large pieces while the consumer keeps the GIL busy.
        read = functools.partial(cast(io.BufferedReader, stdout).read1, self.read_size)
        chunks = read_ahead(read, self.read_ahead)
        try:
            for chunk in chunks:
                buf += decoder.decode(chunk, final=not chunk)
                records = buf.split(_RS)
                buf = records.pop()
                for rec in records:
                    if rec:
                        yield _parse_record(rec)
                if not chunk:
                    break
            if buf:
                yield _parse_record(buf)
        finally:
            chunks.close()  # the reader thread ends before its pipe closes
            stdout.close()
            _, errout = popen.communicate()
        if popen.returncode != 0:
            detail = errout.decode(errors="replace").strip()
            raise GitError(f"git log failed in {self.path}: {detail}")

    def paths(self, shas: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The paths each commit's diff touches, as :meth:`log` lists them (merges: none)."""
        todo = [check_sha(s) for s in shas]
        if not todo:
            return {}
        out = self._run_stdin(
            [
                "log",
                "--no-walk=unsorted",
                "--stdin",
                f"--format={_RS}%H{_US}",
                "--name-only",
                "--no-renames",
                "--diff-merges=off",
                "--",
            ],
            "\n".join(todo) + "\n",
        )
        found: dict[str, tuple[str, ...]] = {}
        for rec in out.split(_RS):
            sha, _, names = rec.partition(_US)
            if sha.strip():
                found[sha.strip()] = _path_list(names)
        return found

    def grep_diffs(self, shas: Iterable[str], regex: str) -> set[str]:
        """The commits among ``shas`` whose diff adds or removes a line matching ``regex``."""
        todo = [check_sha(s) for s in shas]
        if not todo:
            return set()
        out = self._run_stdin(
            ["log", "--no-walk=unsorted", "--stdin", "--format=%H", "-G", regex, "--"],
            "\n".join(todo) + "\n",
        )
        return set(out.split())

    def patch_ids(self, shas: Iterable[str]) -> dict[str, str]:
        """``git patch-id --stable`` for each commit (merges and empty commits have none)."""
        todo = [check_sha(s) for s in shas]
        if not todo:
            return {}
        # git log's diff goes straight into git patch-id through a pipe between the two: a
        # root commit of a kernel tree is gigabytes of diff that must not pass through Python,
        # and a diff that is not valid UTF-8 must reach patch-id byte for byte.
        log = self._popen(
            [
                "git",
                "log",
                "--no-walk=unsorted",
                "--stdin",
                "-p",
                "--no-color",
                "--format=commit %H",
                "--no-renames",
                "--diff-merges=off",
                "--",
            ],
            stdin=True,
        )
        assert log.stdin is not None and log.stdout is not None
        ids = subprocess.Popen(
            ["git", "patch-id", "--stable"],
            cwd=self.repo.git_dir if self.repo.bare else self.repo.working_tree_dir,
            stdin=log.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        log.stdout.close()  # patch-id holds the read end now; it sees EOF when log exits
        try:
            log.stdin.write(("\n".join(todo) + "\n").encode())
            log.stdin.close()
        except BrokenPipeError:
            pass  # log died early; its stderr says why
        out_bytes, pid_err = ids.communicate()
        log_err = log.stderr.read() if log.stderr is not None else b""
        log.wait()
        for name, proc, err in (("log", log, log_err), ("patch-id", ids, pid_err)):
            if proc.returncode != 0:
                detail = err.decode(errors="replace").strip()
                raise GitError(f"git {name} failed in {self.path}: {detail}")
        out = out_bytes.decode("ascii", errors="replace")
        result: dict[str, str] = {}
        for line in out.splitlines():
            pid, _, sha = line.partition(" ")
            if sha:
                result[sha.strip()] = pid
        return result

    def _popen(self, args: list[str], *, stdin: bool = False) -> subprocess.Popen[bytes]:
        # Streams use Popen directly: GitPython's process wrapper kills the child when it is
        # garbage-collected, which can happen while we are still reading its output.
        # GIT_FLUSH=0: into a pipe git flushes after every commit unless told not to; a log of
        # 45,000 commits was 45,000 writes, and a reader keeping up with git woke for each
        # (1.3 s of system time against 0.3 s). We read to the end, so whole buffers will do.
        return subprocess.Popen(
            args,
            cwd=self.repo.git_dir if self.repo.bare else self.repo.working_tree_dir,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "GIT_FLUSH": "0"},
        )

    def commit_patch(self, sha: str) -> str:
        """Diffstat, blank line, then the diff of one commit, as ``git format-patch`` lays out."""
        out = self._run_stdin(
            [
                "show",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--format=",
                "--stat=72",
                "--summary",
                "--patch",
                "--find-renames",
                # Full blob ids: short ones grow with the object database; `git am -3` needs them.
                "--full-index",
                "--end-of-options",
                check_sha(sha),
                "--",
            ],
        )
        return out.strip("\n") + "\n"

    def diffstat(self, old: str, new: str) -> str:
        """Diffstat of everything between two commits."""
        return self._run_stdin(
            [
                "diff",
                "--no-color",
                "--stat=72",
                "--end-of-options",
                check_sha(old),
                check_sha(new),
                "--",
            ],
        ).rstrip("\n")

    def message(self, sha: str) -> str:
        """The full message of one commit."""
        return self._run_stdin(
            ["log", "-1", "--format=%B", "--end-of-options", check_sha(sha), "--"]
        ).rstrip("\n")

    def commit_time(self, sha: str) -> int:
        """Committer time of one commit (seconds since the epoch)."""
        return int(self._run("log", "-1", "--format=%ct", "--end-of-options", check_sha(sha), "--"))

    def tree_entries(self, tree_ish: str) -> list[TreeEntry]:
        """The entries of one tree (``<commit>`` or a tree id), names as git stores them.

        Only an object id is passed: directory and file names never reach a command line."""
        out = self._run_bytes(
            ["ls-tree", "-z", "--full-tree", "--end-of-options", check_sha(tree_ish)]
        )
        entries: list[TreeEntry] = []
        for rec in out.split(b"\0"):
            if not rec:
                continue
            meta, _, name = rec.partition(b"\t")
            mode, kind, oid = meta.decode("ascii").split()
            entries.append(TreeEntry(mode, kind, oid, name.decode("utf-8", "surrogateescape")))
        return entries

    def blobs(self, oids: Sequence[str]) -> dict[str, bytes]:
        """The contents of these blobs, byte for byte, in one ``git cat-file --batch``."""
        todo = list(dict.fromkeys(check_sha(o) for o in oids))
        if not todo:
            return {}
        raw = self._run_bytes(["cat-file", "--batch"], ("\n".join(todo) + "\n").encode())
        out: dict[str, bytes] = {}
        pos = 0
        while pos < len(raw):
            end = raw.index(b"\n", pos)
            head = raw[pos:end].decode("ascii", "replace").split()
            pos = end + 1
            if len(head) == 2 and head[1] == "missing":
                continue
            if len(head) != 3:
                raise GitError(f"unexpected git cat-file output in {self.path}: {head!r}")
            size = int(head[2])
            out[head[0]] = raw[pos : pos + size]
            pos += size + 1
        return out

    def apply_stat(self, patches: bytes) -> str:
        """The diffstat of patch text (any form git apply reads), fed on stdin."""
        out = self._run_bytes(["apply", "--stat", "-"], patches)
        return out.decode("utf-8", "replace").rstrip("\n")

    def stable_patch_ids(self, diffs: Sequence[bytes]) -> list[str | None]:
        """``git patch-id --stable`` of each diff (git form), fed on stdin, in order.

        Each diff gets a numbered ``commit`` line so that the answers can be told apart; a diff
        git finds nothing in gets None."""
        if not diffs:
            return []
        data = b"".join(
            f"commit {i:040x}\n".encode() + d + (b"" if d.endswith(b"\n") else b"\n")
            for i, d in enumerate(diffs)
        )
        out = self._run_bytes(["patch-id", "--stable"], data).decode("ascii", "replace")
        ids: list[str | None] = [None] * len(diffs)
        for line in out.splitlines():
            pid, _, tag = line.partition(" ")
            if tag.strip():
                i = int(tag.strip(), 16)
                if 0 <= i < len(ids):
                    ids[i] = pid
        return ids

    def _run_stdin(self, args: list[str], data: str = "") -> str:
        # Text out with replacement: diffs and messages are not always valid UTF-8.
        return self._run_bytes(args, data.encode()).decode("utf-8", errors="replace")

    def _run_bytes(self, args: list[str], data: bytes = b"") -> bytes:
        popen = self._popen(["git", "-c", "core.quotePath=false", *args], stdin=True)
        out, err = popen.communicate(data)
        if popen.returncode != 0:
            raise GitError(
                f"git {args[0]} failed in {self.path}: {err.decode(errors='replace').strip()}"
            )
        return out


def _refused(exc: GitCommandError, path: Path) -> None:
    """git refusing the repository itself (safe.directory) is not an unknown ref: say so."""
    stderr = str(exc.stderr or "")
    if "dubious ownership" in stderr:
        lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
        first = next((ln for ln in lines if "dubious ownership" in ln), lines[0])
        raise RepositoryError(
            f"{first.removeprefix('stderr: ').strip(chr(39))}; git refuses a repository owned by "
            f"another user: run 'git config --global --add safe.directory {path}' as this "
            "user if you trust it"
        ) from None


def _parse_record(rec: str) -> LogEntry:
    fields = rec.split(_US)
    if len(fields) < 8:
        raise GitError(f"unexpected git log output: {rec[:80]!r}")
    sha, parents, an, ae, at, ct, message = fields[:7]
    paths = _path_list(fields[7])
    return LogEntry(
        sha.strip(),
        tuple(parents.split()),
        an,
        ae,
        int(at),
        int(ct),
        message.strip("\n"),
        paths,
    )


def _path_list(text: str) -> tuple[str, ...]:
    names = tuple(filter(None, text.split("\n")))
    if '"' in text and any(p.startswith('"') for p in names):
        names = tuple(unquote_path(p) for p in names)
    return names


def _widen_pipe(stream: IO[bytes]) -> None:
    """Let git write up to a mebibyte ahead of our reads (Linux; elsewhere a no-op): with the
    default 64 KiB, git stopped whenever the reading thread waited for the GIL."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(stream.fileno(), setsize, _PIPE_SIZE)


_PIPE_SIZE = 1 << 20


def read_ahead(read: Callable[[], bytes], depth: int) -> Generator[bytes, None, None]:
    """What ``read()`` returns up to the end of its stream (an empty chunk), read by a thread up
    to ``depth`` chunks ahead of the caller.

    Without it git stops writing whenever the pipe is full, that is, for as long as the caller
    parses and stores a batch: git's time and tracker's would add up instead of overlapping."""
    chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            while not stop.is_set():
                chunk = read()
                chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # handed to the caller, raised there
            chunks.put(exc)

    reader = threading.Thread(target=pump, name="git-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if not item:
                return
    finally:
        stop.set()
        while reader.is_alive():  # a caller that stopped early: let the thread finish
            try:
                chunks.get_nowait()
            except queue.Empty:
                reader.join(0.01)


def merge_base_of(git_dir: str | Path, a: str, b: str) -> str | None:
    """git's best common ancestor of two commits (None: unrelated histories).

    git reads the commit-graph file a kernel clone keeps; libgit2 parses every commit it walks,
    which on a long history costs several times more for each of the many parents a
    prerequisite search asks about."""
    args = ["git", "--git-dir", str(git_dir), "merge-base", check_sha(a), check_sha(b)]
    proc = subprocess.run(args, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode == 1 and not proc.stdout.strip():
        return None
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git merge-base failed: {detail[-1] if detail else proc.returncode}")
    return check_sha(proc.stdout.decode("ascii", "replace").split()[0])


# (first line, line count, commit, path in that commit, first line there) per blame hunk
BlameHunk = tuple[int, int, str, str, int]
_BLAME_HEAD = re.compile(r"^([0-9a-f]{40,64}) (\d+) (\d+) (\d+)$")


def blame_lines(
    git_dir: str | Path,
    path: str,
    newest: str,
    oldest: str | None,
    ranges: Sequence[tuple[int, int]],
) -> list[BlameHunk]:
    """Who last changed the lines of ``ranges`` (inclusive lo..hi each) of path in newest
    (stopping at oldest), by ``git blame``: one process for all of them, since walking the
    history is most of a blame's cost and several ranges of a file share that walk.

    git's blame costs a fraction of libgit2's on long histories (measured: 0.04 s of CPU against
    0.27 s for the same lines of a 3,000-commit history), which is what the prerequisite search
    of ``tracker check`` spends its time on. Lines older than oldest are given to oldest.
    """
    rev = check_sha(newest) if oldest is None else f"{check_sha(oldest)}..{check_sha(newest)}"
    # a user's blame.ignoreRevsFile would hide exactly the commits the search looks for
    args = ["git", "--git-dir", str(git_dir), "-c", "blame.ignoreRevsFile=", "blame"]
    args.append("--incremental")
    for lo, hi in ranges:
        args += ["-L", f"{int(lo)},{int(hi)}"]
    proc = subprocess.run(
        [*args, rev, "--", path], capture_output=True, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git blame {path} failed: {detail[-1] if detail else proc.returncode}")
    out: list[BlameHunk] = []
    head: tuple[str, int, int, int] | None = None
    for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
        m = _BLAME_HEAD.match(line)
        if m:
            head = (m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)))
        elif line.startswith("filename ") and head is not None:
            name = line[len("filename ") :]
            if name.startswith('"'):
                name = path  # a quoted (unusual) name: renames of such files are not followed
            sha, orig, final, count = head
            out.append((final, count, sha, name, orig))
            head = None
    return out
