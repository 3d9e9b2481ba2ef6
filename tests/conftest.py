"""Shared fixtures: a real sample-world repository and real, Alembic-migrated SQLite stores."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracker import service
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


@pytest.fixture
def synced(world_dir: tuple[SampleWorld, Path]) -> Iterator[Synced]:
    world, root = world_dir
    cfg = load_config(write_demo_config(root))
    store = service.open_store(cfg)
    service.sync(cfg, store)
    service.sync_sources(cfg, store)
    yield Synced(world=world, config=cfg, store=store, root=root)
    store.close()


@pytest.fixture(scope="session")
def synced_ro(world_template: SampleWorld, tmp_path_factory: pytest.TempPathFactory) -> Synced:
    """One synced copy shared by read-only tests (plans, status)."""
    root = tmp_path_factory.mktemp("ro") / "demo"
    shutil.copytree(world_template.path.parent, root, symlinks=True)
    world = SampleWorld(path=root / "linux", shas=dict(world_template.shas))
    cfg = load_config(write_demo_config(root))
    store = service.open_store(cfg)
    service.sync(cfg, store)
    service.sync_sources(cfg, store)
    return Synced(world=world, config=cfg, store=store, root=root)


# A real HTTP server on 127.0.0.1 serving fixture files, for the fetch tests.
from tests.loopback import loopback_server  # noqa: E402, F401
