"""Typed errors. Library code raises these; only the CLI turns them into messages and exit codes.

Exit codes are part of the CLI contract (documented in the README), so each class pins its own.
"""

from __future__ import annotations


class TrackerError(Exception):
    """Base of every error tracker reports to a user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(TrackerError):
    """The configuration file is missing, unreadable or has a bad value."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        where = path or "<config>"
        if key:
            where = f"{where}: key '{key}'"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.key = key


class RepositoryError(TrackerError):
    """A configured git repository is missing or not a git repository."""

    exit_code = 3


class GitError(TrackerError):
    """A git command failed in a way tracker cannot recover from."""

    exit_code = 3


class UnknownBranchError(TrackerError):
    """A branch name that is not in the configuration."""

    exit_code = 4


class UnknownCommitError(TrackerError):
    """A sha, Message-ID or subject that matches nothing (or too much) in the store."""

    exit_code = 5


class InvalidRevisionError(TrackerError):
    """A value that is not a plain hex object name (never passed on to git)."""

    exit_code = 5


class StoreError(TrackerError):
    """The database could not be opened or migrated."""

    exit_code = 6


class NotSyncedError(StoreError):
    """A question about data that no sync has brought in yet."""


class SourceError(TrackerError):
    """A source document could not be fetched or parsed."""

    exit_code = 7


class LockedError(TrackerError):
    """Another tracker run holds the lock."""

    exit_code = 8
