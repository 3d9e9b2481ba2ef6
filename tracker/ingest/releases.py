"""Which release first contained each commit: the tags in version order and their new commits.

A commit belongs to the first tag, in version order, whose history holds it: each tag's
commits are those ``git rev-list`` finds from it, excluding every earlier tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from tracker.gitio import GitRepo

_VERSION_NUM = re.compile(r"\d+")

Tags = list[tuple[str, str]]  # (name, commit sha) in version order


def version_key(tag: str) -> tuple[int, ...]:
    return tuple(int(x) for x in _VERSION_NUM.findall(tag))


def release_tags(repo: GitRepo, pattern: str) -> Tags:
    """The tags of ``repo`` whose names match ``pattern``, in version order."""
    rx = re.compile(pattern)
    return sorted(
        ((n, sha) for n, sha in repo.tags().items() if rx.match(n)),
        key=lambda x: version_key(x[0]),
    )


def release_commits(
    repo: GitRepo, tags: Tags, start: int = 0, base: Sequence[str] = ()
) -> Iterator[tuple[int, str, str, list[str]]]:
    """(ordinal, name, sha, commits new in that tag) for the tags from ``start`` on; commits
    reachable from ``base`` are left out too."""
    for i in range(start, len(tags)):
        name, sha = tags[i]
        yield i, name, sha, repo.rev_list(sha, [*base, *(x[1] for x in tags[:i])])
