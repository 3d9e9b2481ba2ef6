"""Shared fixtures: a real sample-world repository and real, Alembic-migrated SQLite stores."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pgserver import NoPostgres, PostgresServer
from tracker import usecases
from tracker.config import Config, load_config
from tracker.sampleworld.demo import build_demo_world, write_demo_config
from tracker.sampleworld.history import SampleWorld
from tracker.store.db import Store


@dataclass
class Synced:
    world: SampleWorld
    config: Config
    store: Store
    root: Path


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    """The sample world, built once per test session (tests copy it before changing it)."""
    return build_demo_world(tmp_path_factory.mktemp("world") / "demo")


@pytest.fixture
def world_dir(world_template: SampleWorld, tmp_path: Path) -> Iterator[tuple[SampleWorld, Path]]:
    root = tmp_path / "demo"
    shutil.copytree(world_template.path.parent, root, symlinks=True)
    world = SampleWorld(path=root / "linux", shas=dict(world_template.shas))
    yield world, root


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (private cluster) for the whole test session."""
    server = PostgresServer()
    try:
        server.start()
    except NoPostgres as exc:
        if os.environ.get("CI"):
            raise  # CI installs the server (.ci/run): missing it there is a failure
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store behind `synced`; modules about SQLite itself override it with "sqlite"."""
    return str(request.param)


def edited_demo_config(root: Path, edit: Callable[[str], str]) -> Config:
    """The demo world's configuration, its text passed through ``edit``, loaded."""
    path = write_demo_config(root)
    path.write_text(edit(path.read_text()))
    return load_config(path)


def missing_branch_ref(text: str) -> str:
    """A demo configuration whose linux-6.1.y branch names a ref git does not have."""
    return text.replace('name = "linux-6.1.y"', 'name = "linux-6.1.y"\nref = "nope"')


def _use_url(cfg_path: Path, url: str) -> Config:
    text = re.sub(
        r'(?m)^url = "sqlite:///[^"]*"$', lambda _m: f'url = "{url}"', cfg_path.read_text()
    )
    cfg_path.write_text(text)
    return load_config(cfg_path)


def _synced_database(server: PostgresServer, world_template: SampleWorld, tmp: Path) -> str:
    """Sync the sample world once into a database the per-test databases are copied from."""
    root = tmp / "demo"
    shutil.copytree(world_template.path.parent, root, symlinks=True)
    url = server.create_database()
    cfg = _use_url(write_demo_config(root), url)
    store = usecases.open_store(cfg)
    usecases.sync(cfg, store)
    usecases.sync_sources(cfg, store)
    store.close()
    return url


@pytest.fixture(scope="session")
def pg_synced_template(
    request: pytest.FixtureRequest,
    world_template: SampleWorld,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    server: PostgresServer = request.getfixturevalue("pg_server")
    return _synced_database(server, world_template, tmp_path_factory.mktemp("pgtmpl"))


@pytest.fixture
def synced(
    world_dir: tuple[SampleWorld, Path], backend: str, request: pytest.FixtureRequest
) -> Iterator[Synced]:
    world, root = world_dir
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("pg_server")
        template: str = request.getfixturevalue("pg_synced_template")
        # The synced world is the same for every test: copy the synced database.
        url = server.create_database(template=template)
        cfg = _use_url(write_demo_config(root), url)
        store = usecases.open_store(cfg)
        yield Synced(world=world, config=cfg, store=store, root=root)
        store.close()
        server.drop_database(url)
        return
    cfg = load_config(write_demo_config(root))
    store = usecases.open_store(cfg)
    usecases.sync(cfg, store)
    usecases.sync_sources(cfg, store)
    yield Synced(world=world, config=cfg, store=store, root=root)
    store.close()


@pytest.fixture(scope="session", params=BACKENDS)
def synced_ro(
    world_template: SampleWorld,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Synced:
    """One synced copy per store kind, shared by read-only tests (plans, status)."""
    root = tmp_path_factory.mktemp("ro") / "demo"
    shutil.copytree(world_template.path.parent, root, symlinks=True)
    world = SampleWorld(path=root / "linux", shas=dict(world_template.shas))
    cfg_path = write_demo_config(root)
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("pg_server")
        cfg = _use_url(cfg_path, server.create_database())
    else:
        cfg = load_config(cfg_path)
    store = usecases.open_store(cfg)
    usecases.sync(cfg, store)
    usecases.sync_sources(cfg, store)
    return Synced(world=world, config=cfg, store=store, root=root)


# A real HTTP server on 127.0.0.1 serving fixture files, for the fetch tests.
from tests.loopback import loopback_server  # noqa: E402, F401
