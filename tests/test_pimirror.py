"""tracker.ingest.pimirror on real public-inbox v2 layouts built with git fast-import."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tracker.errors import InvalidRevisionError, SourceError
from tracker.ingest.pimirror import Deletion, MirrorMessage, iter_new_messages, list_epochs

WHEN = 1_700_000_000


def mail(n: int) -> bytes:
    return (
        f"From: Dev {n} <dev{n}@example.org>\n"
        f"Subject: [PATCH] fix {n}\n"
        f"Message-ID: <{n}@example.org>\n\n"
        f"Body {n}\n"
    ).encode()


class Epoch:
    """A bare epoch repository written like public-inbox does: one commit per message."""

    def __init__(self, inbox: Path, number: int) -> None:
        self.gitdir = inbox / "git" / f"{number}.git"
        self.gitdir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", str(self.gitdir)], check=True)
        self.tick = 0

    def git(self, *args: str, data: bytes | None = None) -> str:
        done = subprocess.run(
            ["git", f"--git-dir={self.gitdir}", *args], input=data, capture_output=True, check=True
        )
        return done.stdout.decode().strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def _commit(self, ops: bytes, parent: str | None) -> bytes:
        self.tick += 1
        msg = b"msg\n"
        stream = (
            b"commit refs/heads/master\n"
            + b"committer pi <pi@example.org> %d +0000\n" % (WHEN + self.tick)
            + b"data %d\n%s" % (len(msg), msg)
        )
        if parent is not None:
            stream += b"from %s\n" % parent.encode()
        return stream + ops + b"\n"

    def add(self, *raws: bytes, parent: str | None = None) -> list[str]:
        """Append messages; with ``parent`` the branch is rewound there first (a rewrite)."""
        stream = b""
        start = parent if parent is not None else self._tip()
        for i, raw in enumerate(raws):
            ops = b"D d\nM 100644 inline m\ndata %d\n%s\n" % (len(raw), raw)
            stream += self._commit(ops, start if i == 0 else None)
        self.git("fast-import", "--quiet", "--force", data=stream)
        count = len(raws)
        return self.git("rev-list", "--reverse", f"-{count}", "HEAD").split()[-count:]

    def remove(self) -> str:
        """public-inbox's removal: the tree then holds the removed message as ``d``."""
        removed = subprocess.run(
            ["git", f"--git-dir={self.gitdir}", "cat-file", "blob", "HEAD:m"],
            capture_output=True,
            check=True,
        ).stdout
        ops = b"D m\nM 100644 inline d\ndata %d\n%s\n" % (len(removed), removed)
        self.git("fast-import", "--quiet", data=self._commit(ops, self._tip()))
        return self.head()

    def _tip(self) -> str | None:
        done = subprocess.run(
            ["git", f"--git-dir={self.gitdir}", "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
        )
        return done.stdout.decode().strip() or None


def read(inbox: Path, cursors: dict[str, str]) -> tuple[list[MirrorMessage], dict[str, str]]:
    scan = iter_new_messages(inbox, cursors)
    got = list(scan)
    return got, scan.cursors


def test_full_then_incremental_then_second_epoch(tmp_path: Path) -> None:
    e0 = Epoch(tmp_path, 0)
    first = e0.add(mail(1), mail(2), mail(3))
    got, cursors = read(tmp_path, {})
    assert got == [MirrorMessage("0", c, mail(n)) for c, n in zip(first, (1, 2, 3), strict=True)]
    assert cursors == {"0": first[-1]}

    assert read(tmp_path, cursors) == ([], cursors)  # nothing new

    more = e0.add(mail(4), mail(5))
    got, cursors = read(tmp_path, cursors)
    assert [m.raw for m in got] == [mail(4), mail(5)]
    assert [m.commit for m in got] == more

    e1 = Epoch(tmp_path, 1)
    new_epoch = e1.add(mail(6))
    e0.add(mail(7))  # late write to the old epoch is still seen
    got, cursors = read(tmp_path, cursors)
    assert [(m.epoch, m.raw) for m in got] == [("0", mail(7)), ("1", mail(6))]
    assert cursors["1"] == new_epoch[0]


def test_deleted_message_is_reported_not_yielded(tmp_path: Path) -> None:
    e0 = Epoch(tmp_path, 0)
    e0.add(mail(1))
    _, cursors = read(tmp_path, {})
    e0.add(mail(2))
    removal = e0.remove()
    last = e0.add(mail(3))
    scan = iter_new_messages(tmp_path, cursors)
    assert [m.raw for m in scan] == [mail(2), mail(3)]
    assert scan.deletions == [Deletion("0", removal, mail(2))]
    assert scan.cursors == {"0": last[0]}


def test_deletion_as_last_commit_moves_cursor(tmp_path: Path) -> None:
    e0 = Epoch(tmp_path, 0)
    e0.add(mail(1))
    removal = e0.remove()
    scan = iter_new_messages(tmp_path, {})
    assert [m.raw for m in scan] == [mail(1)]
    assert scan.cursors == {"0": removal}


def test_rewritten_epoch_is_reported_and_reread(tmp_path: Path) -> None:
    e0 = Epoch(tmp_path, 0)
    kept, purged = e0.add(mail(1), mail(2))
    _, cursors = read(tmp_path, {})
    assert cursors == {"0": purged}
    # public-inbox-purge: history rewritten without message 2, then a new message arrives.
    new = e0.add(mail(3), parent=kept)
    scan = iter_new_messages(tmp_path, cursors)
    assert [m.raw for m in scan] == [mail(3)]
    (rewrite,) = scan.rewrites
    assert (rewrite.epoch, rewrite.old_cursor, rewrite.cursor_known) == ("0", purged, True)
    assert scan.cursors == {"0": new[0]}


def test_rewrite_with_unknown_cursor_rereads_whole_epoch(tmp_path: Path) -> None:
    e0 = Epoch(tmp_path, 0)
    e0.add(mail(1), mail(2))
    gone = "0123456789abcdef0123456789abcdef01234567"
    scan = iter_new_messages(tmp_path, {"0": gone})
    assert [m.raw for m in scan] == [mail(1), mail(2)]
    assert scan.rewrites[0].cursor_known is False


def test_stopping_early_keeps_a_resumable_cursor(tmp_path: Path) -> None:
    e0 = Epoch(tmp_path, 0)
    commits = e0.add(*(mail(n) for n in range(10)))
    scan = iter_new_messages(tmp_path, {})
    for count, _ in enumerate(scan, start=1):
        if count == 4:
            break
    assert scan.cursors == {"0": commits[3]}
    got, _ = read(tmp_path, scan.cursors)
    assert [m.raw for m in got] == [mail(n) for n in range(4, 10)]


def test_window_larger_than_epoch_and_binary_safe(tmp_path: Path) -> None:
    e0 = Epoch(tmp_path, 0)
    raws = [mail(n) + bytes(range(256)) + b"\n" for n in range(600)]
    e0.add(*raws)
    got, _ = read(tmp_path, {})
    assert [m.raw for m in got] == raws


@pytest.mark.parametrize("cursor", ["HEAD", "--upload-pack=touch x", "abc", "g" * 40, "A" * 40])
def test_cursor_must_be_hex(tmp_path: Path, cursor: str) -> None:
    Epoch(tmp_path, 0)
    with pytest.raises(InvalidRevisionError):
        iter_new_messages(tmp_path, {"0": cursor})


def test_not_a_mirror(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a public-inbox v2 mirror"):
        iter_new_messages(tmp_path, {})


def test_epochs_sorted_numerically_and_empty_epoch_skipped(tmp_path: Path) -> None:
    for number in (10, 2, 0):
        Epoch(tmp_path, number)
    (tmp_path / "git" / "notes.git").mkdir()
    assert [name for name, _ in list_epochs(tmp_path)] == ["0", "2", "10"]
    assert read(tmp_path, {}) == ([], {})
