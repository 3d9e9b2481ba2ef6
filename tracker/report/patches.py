"""The diffs mails carry, read with plain ``git`` (a read-only ``git show`` / ``git diff``).

Every revision is validated with :func:`tracker.gitio.check_sha` before it reaches git, and
``--end-of-options`` stops anything from being read as an option.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tracker.errors import GitError, RepositoryError
from tracker.gitio import check_sha


def _git(repo: Path, *args: str) -> str:
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise RepositoryError(f"not a git repository: {repo}")
    proc = subprocess.run(
        ["git", "-C", str(repo), "-c", "core.quotePath=false", *args],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed in {repo}: {detail[-1] if detail else 'error'}")
    return proc.stdout.decode("utf-8", errors="replace")


def commit_patch(repo: Path, sha: str) -> str:
    """Diffstat, blank line, then the diff of one commit, as ``git format-patch`` lays it out."""
    out = _git(
        repo,
        "show",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--format=",
        "--stat=72",
        "--summary",
        "--patch",
        "--find-renames",
        # Full blob ids: abbreviations grow with the object database, and `git am -3` needs them.
        "--full-index",
        "--end-of-options",
        check_sha(sha),
        "--",
    )
    return out.strip("\n") + "\n"


def range_diffstat(repo: Path, old: str, new: str) -> str:
    """Diffstat of everything between two commits (the review cover's closing section)."""
    return _git(
        repo,
        "diff",
        "--no-color",
        "--stat=72",
        "--end-of-options",
        check_sha(old),
        check_sha(new),
        "--",
    ).rstrip("\n")


def commit_message(repo: Path, sha: str) -> str:
    """The full message of one commit (used when the store did not keep it)."""
    return _git(repo, "log", "-1", "--format=%B", "--end-of-options", check_sha(sha), "--").rstrip(
        "\n"
    )
