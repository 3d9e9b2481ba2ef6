"""Write a deterministic git history: fixed identities, fixed dates, text edits, real cherry-picks.

Shas depend only on content, parents, identities, dates and messages, so the same world gets the
same shas on every machine and every git version.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tracker.errors import GitError

_EPOCH = 1640995200  # 2022-01-01T00:00:00Z


@dataclass(frozen=True)
class Person:
    name: str
    email: str

    @property
    def ident(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class Edit:
    path: str
    old: str | None
    new: str


class WorldBuilder:
    def __init__(self, path: Path, committer: Person) -> None:
        self.path = path
        self.committer = committer
        self.tick = 0
        path.mkdir(parents=True, exist_ok=True)
        self._git("init", "-q", "-b", "master")
        self._git("config", "core.autocrlf", "false")
        self._git("config", "commit.gpgsign", "false")
        self._git("config", "tag.gpgsign", "false")

    def _env(self, author: Person) -> dict[str, str]:
        self.tick += 1
        date = f"{_EPOCH + self.tick * 43200} +0000"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            GIT_AUTHOR_NAME=author.name,
            GIT_AUTHOR_EMAIL=author.email,
            GIT_AUTHOR_DATE=date,
            GIT_COMMITTER_NAME=self.committer.name,
            GIT_COMMITTER_EMAIL=self.committer.email,
            GIT_COMMITTER_DATE=date,
            GIT_CONFIG_NOSYSTEM="1",
            HOME=str(self.path),
        )
        return env

    def _git(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=env or {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path)},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise GitError(f"sample world: git {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def _apply(self, edits: list[Edit]) -> None:
        for e in edits:
            f = self.path / e.path
            if e.old is None:
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(e.new)
                continue
            text = f.read_text()
            if text.count(e.old) != 1:
                raise GitError(
                    f"sample world: edit of {e.path} expects one match of {e.old[:40]!r}, "
                    f"found {text.count(e.old)}"
                )
            f.write_text(text.replace(e.old, e.new))

    def commit(self, author: Person, message: str, edits: list[Edit]) -> str:
        self._apply(edits)
        self._git("add", "-A")
        self._git("commit", "-q", "--no-verify", "-m", message, env=self._env(author))
        return self._git("rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        self._git("tag", name)

    def branch(self, name: str, start: str) -> None:
        self._git("checkout", "-q", "-b", name, start)

    def checkout(self, name: str) -> None:
        self._git("checkout", "-q", name)

    def backport(self, author: Person, upstream: str, message: str) -> str:
        """Cherry-pick ``upstream`` onto the current branch under a stable-style message."""
        self._git("cherry-pick", "--no-commit", upstream)
        self._git("commit", "-q", "--no-verify", "-m", message, env=self._env(author))
        return self._git("rev-parse", "HEAD")

    def revert(self, author: Person, sha: str, message: str) -> str:
        self._git("revert", "--no-commit", sha)
        self._git("commit", "-q", "--no-verify", "-m", message, env=self._env(author))
        return self._git("rev-parse", "HEAD")

    def subject(self, sha: str) -> str:
        return self._git("log", "-1", "--format=%s", sha)

    def message(self, sha: str) -> str:
        return self._git("log", "-1", "--format=%B", sha).rstrip("\n")
