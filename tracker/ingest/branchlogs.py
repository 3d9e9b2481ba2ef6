"""Stable branch logs started ahead of their turn.

A branch's sync reads its log (git and the parsing worker busy, the syncing process waiting),
then stores the rows (the syncing process busy, git idle). Starting the next branch's log
before storing the current one's overlaps the two. The guess of its arguments has no side
effects; the branch's own sync computes them as always and uses the started log only when
they agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from tracker.config import BranchConfig
from tracker.errors import TrackerError
from tracker.gitio import GitRepo
from tracker.ingest.logrows import LogRows, RowRules, can_fork
from tracker.store.db import Store
from tracker.store.models import Branch


class BranchLogs:
    def __init__(self, store: Store, rules: RowRules) -> None:
        self.store, self.rules = store, rules
        self._started: dict[str, LogRows] = {}

    def start(self, b: BranchConfig, repo: GitRepo) -> None:
        """Start the log ``b``'s sync will most likely read (nothing if it cannot be told)."""
        if b.name in self._started or not can_fork():
            return
        guess = self._guess(b, repo)
        if guess is not None:
            self._started[b.name] = LogRows(repo, guess[0], guess[1], self.rules)

    def take(
        self, name: str, repo: GitRepo, include: str, exclude: Sequence[str]
    ) -> LogRows | None:
        """The log started for branch ``name`` if it is this one; a wrong guess is ended."""
        rows = self._started.pop(name, None)
        if rows is None:
            return None
        if (rows.repo, rows.include, rows.exclude) == (repo, include, tuple(exclude)):
            return rows
        rows.close()
        return None

    def close(self) -> None:
        for rows in self._started.values():
            rows.close()
        self._started.clear()

    def _guess(self, b: BranchConfig, repo: GitRepo) -> tuple[str, list[str]] | None:
        """(head, exclude) as GitSync.sync_branch will find them, or None when it will not read
        a log or the stored state needs work first."""
        try:
            base, head = repo.try_resolve(b.base), repo.try_resolve(b.ref)
            if base is None or head is None:
                return None
            with self.store.session() as s:
                row = s.scalar(select(Branch).where(Branch.name == b.name))
                # A new base starts the branch over (GitSync._branch_row).
                same = row is not None and (row.base_sha, row.base_tag) == (base, b.base)
                old = row.head_sha if row is not None and same else None
            if old == head:
                return None
            return head, log_exclude(repo, base, old)
        except TrackerError:
            return None  # the branch's own sync meets it again and reports it


def log_exclude(repo: GitRepo, base: str, old: str | None) -> list[str]:
    """What a branch's log leaves out: its base, and the head synced last if git still has it."""
    return [base, old] if old and repo.try_resolve(old) else [base]
