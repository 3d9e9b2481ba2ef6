"""git objects as the simulator reads them: file modes, versions (_Ver), paths, opening a
repository, resolving revisions, and raw tree parsing."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import pygit2

from tracker.errors import InvalidRevisionError, RepositoryError, UnknownCommitError

_S_IFMT = 0o170000
_S_IFREG = 0o100000
_S_IFLNK = 0o120000
_S_IFGITLINK = 0o160000
_MODE_TREE = 0o040000
_MAX_SCORE = 60000
_BINARY_PROBE = 8000
_HEX_RE = re.compile(r"[0-9a-fA-F]{4,64}")
_REF_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]*")


class _Ver(NamedTuple):
    oid: pygit2.Oid
    mode: int


def _is_blob(ver: _Ver) -> bool:
    """A regular file or a symlink (a gitlink names a commit of another repository)."""
    return _fmt(ver.mode) != _S_IFGITLINK


def _is_reg(mode: int) -> bool:
    return (mode & _S_IFMT) == _S_IFREG


def _fmt(mode: int) -> int:
    return mode & _S_IFMT


def _dirname(path: str) -> str:
    return path.rpartition("/")[0]


def _basename(path: str) -> str:
    return path.rpartition("/")[2]


def _ancestors(path: str) -> Iterable[str]:
    """Proper ancestor directories of a path, nearest first, excluding the root."""
    d = _dirname(path)
    while d:
        yield d
        d = _dirname(d)


def _open(repo_path: str | Path) -> pygit2.Repository:
    try:
        return pygit2.Repository(str(repo_path))
    except (pygit2.GitError, KeyError, OSError) as exc:
        raise RepositoryError(f"{repo_path}: not a git repository ({exc})") from exc


def _check_rev(rev: str) -> None:
    if not isinstance(rev, str) or not rev or rev.startswith("-"):
        raise InvalidRevisionError(f"invalid revision {rev!r}")
    bad = ".." in rev or "@{" in rev or rev.endswith((".lock", "/", ".")) or "//" in rev
    if not (_HEX_RE.fullmatch(rev) or (_REF_RE.fullmatch(rev) and not bad)):
        raise InvalidRevisionError(f"invalid revision {rev!r}")


def _resolve_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    _check_rev(rev)
    obj: pygit2.Object | None = None
    if _HEX_RE.fullmatch(rev):
        try:
            obj = repo.get(rev)
        except (ValueError, pygit2.GitError) as exc:
            raise UnknownCommitError(f"{rev}: ambiguous or unknown object ({exc})") from exc
    if obj is None:
        try:
            return repo.lookup_reference_dwim(rev).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            obj = None
    if obj is None:
        raise UnknownCommitError(f"{rev}: no such commit")
    try:
        return obj.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        raise UnknownCommitError(f"{rev}: not a commit") from exc


def _subject(commit: pygit2.Commit) -> str:
    return commit.message.split("\n", 1)[0].strip()


Changes = dict[str, tuple[_Ver | None, _Ver | None]]


def _parse_tree(data: bytes, oid_size: int) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    pos, end = 0, len(data)
    while pos < end:
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
        out[name] = (data[nul + 1 : nul + 1 + oid_size], int(data[pos:space], 8))
        pos = nul + 1 + oid_size
    return out


def _raw_ver(entry: tuple[bytes, int]) -> _Ver:
    return _Ver(pygit2.Oid(raw=entry[0]), entry[1])
