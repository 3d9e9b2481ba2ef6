"""Helpers that build real git repositories with the git CLI, for tests and benchmarks.

Every git call runs with a fixed identity and dates and without the user's global or system
configuration, so results do not depend on the machine running the tests.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.invalid",
    "GIT_AUTHOR_DATE": "1700000000 +0000",
    "GIT_COMMITTER_DATE": "1700000000 +0000",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}
GIT_OPTS = (
    "-c",
    "core.autocrlf=false",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "advice.detachedHead=false",
    "-c",
    "gc.auto=0",
)


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV)
    if extra:
        env.update(extra)
    return env


def git(
    cwd: str | Path,
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        ["git", *GIT_OPTS, *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        env=_env(env),
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args)} failed ({proc.returncode}): "
            f"{proc.stderr.decode(errors='replace')}"
        )
    return proc


def git_out(cwd: str | Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    return git(cwd, *args, env=env).stdout.decode().strip()


def init_repo(path: str | Path) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    git(p, "init", "-q")
    return p


def commit_files(
    repo: str | Path,
    files: Mapping[str, bytes | str | None],
    message: str,
    *,
    executable: Iterable[str] = (),
    symlinks: Mapping[str, str] | None = None,
    date: int | None = None,
) -> str:
    """Write (or delete, when None) files in the work tree and commit everything."""
    root = Path(repo)
    for name, content in files.items():
        target = root / name
        if content is None:
            if target.is_symlink() or target.exists():
                target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    for name in executable:
        (root / name).chmod(0o755)
    for name, dest in (symlinks or {}).items():
        link = root / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(dest)
    git(root, "add", "-A")
    env = None
    if date is not None:
        env = {"GIT_AUTHOR_DATE": f"{date} +0000", "GIT_COMMITTER_DATE": f"{date} +0000"}
    git(root, "commit", "-q", "--allow-empty", "-m", message, env=env)
    return git_out(root, "rev-parse", "HEAD")


def rename_file(repo: str | Path, old: str, new: str) -> None:
    root = Path(repo)
    (root / new).parent.mkdir(parents=True, exist_ok=True)
    git(root, "mv", old, new)


# ---------------------------------------------------------------------------------------------
# fast-import: whole histories in one process
# ---------------------------------------------------------------------------------------------


@dataclass
class FileState:
    data: bytes
    mode: str = "100644"


@dataclass
class FastImport:
    """Accumulates a fast-import stream of commits, each given as a full snapshot or changes."""

    chunks: list[bytes] = field(default_factory=list)
    next_mark: int = 1
    time: int = 1_600_000_000

    def mark(self) -> int:
        m = self.next_mark
        self.next_mark += 1
        return m

    def blob(self, data: bytes) -> int:
        m = self.mark()
        self.chunks.append(b"blob\nmark :%d\ndata %d\n%s\n" % (m, len(data), data))
        return m

    def commit(
        self,
        ref: str,
        message: str,
        changes: Mapping[str, FileState | None],
        *,
        parent: int | None = None,
        deleteall: bool = False,
    ) -> int:
        ops: list[bytes] = []
        if deleteall:
            ops.append(b"deleteall\n")
        for path, state in sorted(changes.items()):
            if state is None:
                ops.append(b"D %s\n" % path.encode())
            else:
                ops.append(
                    b"M %s :%d %s\n" % (state.mode.encode(), self.blob(state.data), path.encode())
                )
        m = self.mark()
        self.time += 60
        msg = message.encode()
        head = (
            b"commit %s\nmark :%d\nauthor A U Thor <a@example.invalid> %d +0000\n"
            b"committer C O Mitter <c@example.invalid> %d +0000\ndata %d\n%s\n"
            % (ref.encode(), m, self.time, self.time, len(msg), msg)
        )
        self.chunks.append(head)
        if parent is not None:
            self.chunks.append(b"from :%d\n" % parent)
        self.chunks.extend(ops)
        self.chunks.append(b"\n")
        return m

    def run(self, repo: str | Path) -> dict[int, str]:
        """Feed the stream to git fast-import and return mark -> commit sha."""
        marks_file = Path(repo) / ".git" / "fi-marks"
        stream = b"".join(self.chunks) + b"done\n"
        git(repo, "fast-import", "--quiet", "--done", f"--export-marks={marks_file}", input=stream)
        out: dict[int, str] = {}
        for line in marks_file.read_text().splitlines():
            mark, sha = line.split()
            out[int(mark[1:])] = sha
        marks_file.unlink()
        return out


# ---------------------------------------------------------------------------------------------
# Ground truth: real git cherry-pick in a real work tree
# ---------------------------------------------------------------------------------------------


class GitCrashed(RuntimeError):
    """git itself died (a BUG() assertion or a signal), so it has no verdict to compare."""


@dataclass(frozen=True)
class GitVerdict:
    verdict: str  # "clean", "conflict" or "already-present"
    tree: str | None


class CherryPicker:
    """Runs git cherry-pick in a work tree (HEAD detached), the reference for every verdict.

    Verdict rule: cherry-pick --no-commit; a non-zero exit with unmerged index entries is a
    conflict; a clean exit whose index tree equals HEAD's tree is an empty result (what plain
    git cherry-pick reports as "The previous cherry-pick is now empty"); else clean with that
    tree. --no-commit is used so that git never stops to ask about empty commits.
    """

    def __init__(self, worktree: str | Path) -> None:
        self.wt = Path(worktree)

    def checkout(self, rev: str) -> None:
        git(self.wt, "reset", "-q", "--hard", rev)

    def head_tree(self) -> str:
        return git_out(self.wt, "rev-parse", "HEAD^{tree}")

    def pick(self, sha: str) -> GitVerdict:
        before = self.head_tree()
        proc = git(self.wt, "cherry-pick", "--no-commit", sha, check=False)
        if proc.returncode < 0 or b"BUG:" in proc.stderr:
            lock = Path(git_out(self.wt, "rev-parse", "--absolute-git-dir")) / "index.lock"
            lock.unlink(missing_ok=True)
            self.reset()
            raise GitCrashed(proc.stderr.decode(errors="replace").strip())
        if proc.returncode != 0:
            unmerged = git_out(self.wt, "ls-files", "-u")
            self.reset()
            if not unmerged and b"CONFLICT" not in proc.stdout + proc.stderr:
                raise RuntimeError(
                    f"cherry-pick {sha} failed without conflicts: "
                    f"{(proc.stdout + proc.stderr).decode(errors='replace')}"
                )
            return GitVerdict("conflict", None)
        tree = git_out(self.wt, "write-tree")
        if tree == before:
            self.reset()
            return GitVerdict("already-present", tree)
        return GitVerdict("clean", tree)

    def commit_picked(self, message: str = "picked") -> str:
        git(self.wt, "commit", "-q", "--no-verify", "--allow-empty", "-m", message)
        return git_out(self.wt, "rev-parse", "HEAD")

    def reset(self) -> None:
        git(self.wt, "reset", "-q", "--hard", "HEAD")
        git(self.wt, "cherry-pick", "--quit", check=False)
        git(self.wt, "clean", "-qfdx")


def add_worktree(repo: str | Path, path: str | Path, rev: str) -> CherryPicker:
    git(repo, "worktree", "add", "-q", "--detach", str(path), rev)
    return CherryPicker(path)


def git_version() -> tuple[int, ...]:
    text = subprocess.run(["git", "--version"], capture_output=True, check=True).stdout.decode()
    parts = text.split()[2].split(".")
    return tuple(int(p) for p in parts[:3] if p.isdigit())
