"""Patch-ids are computed only for commits that can share one with a seeker.

Seekers are stable commits without an upstream reference and mails waiting for their commit.
The store is the seam: a commit that was never given a patch-id keeps NULL there.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tracker import service
from tracker.config import Config, load_config
from tracker.ingest.gitlog import SyncStats
from tracker.store.db import Store
from tracker.store.models import Commit, Message, Source

_CONFIG = """\
[database]
url = "sqlite:///{db}"

[[repositories]]
name = "proj"
path = "proj"

[mainline]
repository = "proj"
ref = "master"

[[branches]]
name = "stable-1.0"
base = "v1.0"

[[topics]]
name = "everything"
paths = ["*"]
{sources}"""

_MBOX_SOURCE = """
[[sources]]
name = "list"
kind = "mbox"
path = "mail"
"""


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "A U Thor",
        "GIT_AUTHOR_EMAIL": "author@example.org",
        "GIT_COMMITTER_NAME": "C O Mitter",
        "GIT_COMMITTER_EMAIL": "committer@example.org",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True
    ).stdout.decode(errors="replace")


def _commit(repo: Path, subject: str, **files: str) -> str:
    for name, text in files.items():
        path = repo / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        _git(repo, "add", str(path.relative_to(repo)))
    _git(repo, "commit", "-qm", subject)
    return _git(repo, "rev-parse", "HEAD").strip()


@dataclass
class World:
    root: Path
    repo: Path
    shas: dict[str, str]

    def config(self, *, mail: bool = False) -> Config:
        cfg = self.root / "tracker.toml"
        sources = _MBOX_SOURCE if mail else ""
        cfg.write_text(_CONFIG.format(db=self.root / "tracker.db", sources=sources))
        return load_config(cfg)


def _world(root: Path) -> World:
    repo = root / "proj"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "master")
    base = {f: f"/* {f} */\nint {f[0]};\n" for f in ("a.c", "b.c", "c.c", "x.c")}
    _commit(repo, "initial", **base)
    _git(repo, "tag", "v1.0")
    shas = {
        "a1": _commit(repo, "a: change a", **{"a.c": "/* a.c */\nint a = 1;\n"}),
        "b1": _commit(repo, "b: change b", **{"b.c": "/* b.c */\nint b = 1;\n"}),
        "x1": _commit(repo, "x: fix x", **{"x.c": "/* x.c */\nint x = 1;\n"}),
        "c1": _commit(repo, "c: change c", **{"c.c": "/* c.c */\nint c = 1;\n"}),
        # Same path as x1, another diff: a candidate whose patch-id then differs.
        "x2": _commit(repo, "x: change x again", **{"x.c": "/* x.c */\nint x = 2;\n"}),
        "ax": _commit(
            repo, "a, x: both", **{"a.c": "/* a.c */\nint a = 2;\n", "x.c": "int x = 3;\n"}
        ),
        "d1": _commit(repo, "d: new dir", **{"d__e.c": "int e;\n"}),
    }
    _git(repo, "checkout", "-q", "-b", "stable-1.0", "v1.0")
    # The backport of x1 that lost its upstream line (a plain cherry-pick, no -x).
    _git(repo, "cherry-pick", shas["x1"])
    shas["orphan"] = _git(repo, "rev-parse", "HEAD").strip()
    # A backport that says what it is: no patch-id needed.
    _git(repo, "cherry-pick", shas["a1"])
    msg = f"a: change a\n\ncommit {shas['a1']} upstream.\n"
    _git(repo, "commit", "-q", "--amend", "-m", msg)
    shas["named"] = _git(repo, "rev-parse", "HEAD").strip()
    _git(repo, "checkout", "-q", "master")
    return World(root, repo, shas)


def _patch_ids(store: Store) -> dict[str, str | None]:
    with store.session() as s:
        return {sha: pid for sha, pid in s.execute(select(Commit.sha, Commit.patch_id))}


def _named(world: World, ids: dict[str, str | None]) -> set[str]:
    names = {sha: name for name, sha in world.shas.items()}
    return {names.get(sha, sha) for sha, pid in ids.items() if pid is not None}


def _sync(cfg: Config) -> tuple[Store, SyncStats]:
    store = service.open_store(cfg)
    if cfg.sources:
        service.sync_sources(cfg, store)
    return store, service.sync(cfg, store)


def test_orphan_links_by_patch_id_and_only_its_path_mates_are_diffed(tmp_path: Path) -> None:
    world = _world(tmp_path)
    store, stats = _sync(world.config())
    with store.session() as s:
        orphan = s.get(Commit, world.shas["orphan"])
        assert orphan is not None
        assert (orphan.upstream_sha, orphan.upstream_rule) == (world.shas["x1"], "patch-id")
    assert stats.patch_id_links == 1
    # Every mainline commit is in the all-paths topic, yet only the two that touch exactly
    # x.c (x1, and x2 whose patch-id then differs) and the orphan itself were diffed.
    assert _named(world, _patch_ids(store)) == {"x1", "x2", "orphan"}
    assert stats.patch_ids == 3
    again = service.sync(world.config(), store)
    assert (again.patch_ids, again.patch_id_links) == (0, 0)


def test_a_later_orphan_finds_a_later_commit(tmp_path: Path) -> None:
    world = _world(tmp_path)
    store, _ = _sync(world.config())
    late = _commit(world.repo, "y: a new file", **{"y.c": "int y;\n"})
    other = _commit(world.repo, "b: late change", **{"b.c": "int b = 4;\n"})
    _git(world.repo, "checkout", "-q", "stable-1.0")
    _git(world.repo, "cherry-pick", late)
    orphan = _git(world.repo, "rev-parse", "HEAD").strip()
    _git(world.repo, "checkout", "-q", "master")
    stats = service.sync(world.config(), store)
    ids = _patch_ids(store)
    # The new orphan and the new commit on its path; x1 and x2 had theirs from the first run.
    assert ids[late] and ids[orphan] and ids[other] is None and stats.patch_ids == 2
    with store.session() as s:
        row = s.get(Commit, orphan)
        assert row is not None and (row.upstream_sha, row.upstream_rule) == (late, "patch-id")


def test_rows_from_before_path_keys_get_them_from_git_and_link_the_same(tmp_path: Path) -> None:
    world = _world(tmp_path)
    cfg = world.config()
    store, _ = _sync(cfg)
    with store.session() as s:
        # As a database synced before commits carried path keys: keys unknown, and the
        # orphan not linked yet.
        s.execute(update(Commit).values(paths_key=None, patch_id=None))
        s.execute(
            update(Commit)
            .where(Commit.sha == world.shas["orphan"])
            .values(upstream_sha=None, upstream_rule=None)
        )
        s.execute(update(Source).where(Source.name.like("patch-id%")).values(cursor=None))
    stats = service.sync(cfg, store)
    assert stats.patch_id_links == 1 and stats.patch_ids == 3
    assert _named(world, _patch_ids(store)) == {"x1", "x2", "orphan"}
    with store.session() as s:
        keys = {sha: key for sha, key in s.execute(select(Commit.sha, Commit.paths_key))}
    assert all(k is not None for k in keys.values())
    assert keys[world.shas["x1"]] == keys[world.shas["orphan"]] != keys[world.shas["ax"]]


def _post(world: World, sha: str) -> None:
    """The posting of a mainline commit, as git format-patch writes it, with no Link: back."""
    mail = world.root / "mail"
    mail.mkdir(exist_ok=True)
    text = _git(world.repo, "format-patch", "--stdout", "-1", sha)
    text = text.replace("Subject: [PATCH]", "Message-ID: <posting@example.org>\nSubject: [PATCH]")
    (mail / "list.mbox").write_text(text)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_waiting_mail_links_by_patch_id(tmp_path: Path, legacy: bool) -> None:
    world = _world(tmp_path)
    _post(world, world.shas["b1"])
    cfg = world.config(mail=True)
    store = service.open_store(cfg)
    service.sync_sources(cfg, store)
    if legacy:
        # A mail stored before mails carried a path key: read from its stored document.
        with store.session() as s:
            s.execute(update(Message).values(paths_key=None))
    stats = service.sync(cfg, store)
    with store.session() as s:
        msg = s.get(Message, "posting@example.org")
        assert msg is not None and msg.link_rule == "patch-id"
        b1 = s.get(Commit, world.shas["b1"])
        assert b1 is not None and msg.change_id == b1.change_id is not None
        assert msg.paths_key == b1.paths_key
    assert _named(world, _patch_ids(store)) == {"x1", "x2", "orphan", "b1"}
    assert stats.patch_ids == 4
