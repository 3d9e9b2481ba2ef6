"""Typed errors. Library code raises these; only the CLI turns them into messages and exit codes.

Exit codes are part of the CLI contract (documented in the README), so each class pins its own.
"""

from __future__ import annotations

import errno


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


class DatabaseBusyError(TrackerError):
    """Another process kept the database locked longer than the bounded wait."""

    exit_code = 9


class DiskFullError(TrackerError):
    """No space left on the device (or quota exceeded) while writing."""

    exit_code = 10


class AccessDeniedError(TrackerError):
    """A file or directory tracker must write is not writable by this user (or read-only)."""

    exit_code = 11


class InterruptedRun(TrackerError):
    """The run was interrupted (Ctrl-C or SIGTERM); committed work stays, the rest is redone."""

    exit_code = 130


class ConfigWarning(UserWarning):
    """A configuration that works but probably does not say what its author meant."""


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def from_os_error(exc: OSError, what: str) -> TrackerError | None:
    """The typed error for an OSError a user's environment causes, or None for anything else."""
    detail = exc.strerror or str(exc)
    if exc.errno in _DISK_FULL:
        return DiskFullError(f"{what}: {detail}")
    if exc.errno in _DENIED:
        return AccessDeniedError(f"{what}: {detail}")
    return None


def classify(exc: BaseException) -> TrackerError | None:
    """A user-caused failure that escaped as a library exception, as its typed error.

    SQLite reports a full disk, a lock held past the busy timeout and a read-only file as
    OperationalError text; the OS reports them as errno. Everything else stays a bug (None).
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, TrackerError):
            return cur
        if isinstance(cur, OSError) and cur.errno is not None:
            found = from_os_error(cur, cur.filename or "write failed")
            if found is not None:
                return found
        text = str(cur).lower()
        if "database or disk is full" in text or "no space left" in text:
            return DiskFullError(f"database: {_first_line(cur)}")
        if "database is locked" in text or "database table is locked" in text:
            return DatabaseBusyError(
                "database is locked by another process (waited for the busy timeout); "
                "try again when the other run has finished"
            )
        if "readonly database" in text or "read-only database" in text:
            return AccessDeniedError(f"database is read-only: {_first_line(cur)}")
        cur = cur.__cause__ or cur.__context__
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
