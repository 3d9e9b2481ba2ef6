"""Lay out the demo directory: the sample repository and a config that points at it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tracker.config import DEFAULT_TOPICS
from tracker.errors import ConfigError
from tracker.sampleworld.history import SampleWorld, build_world
from tracker.sampleworld.mails import write_mails

MARKER = ".tracker-demo"

DEMO_CONFIG = """\
# Written by 'tracker demo': the offline sample world.
[database]
url = "sqlite:///{db}"

[[repositories]]
name = "linux"
path = "linux"

[mainline]
repository = "linux"
ref = "master"

[[branches]]
name = "linux-6.12.y"
base = "v6.12"

[[branches]]
name = "linux-6.6.y"
base = "v6.6"

[[branches]]
name = "linux-6.1.y"
base = "v6.1"

[[sources]]
name = "demo-mail"
kind = "mbox"
path = "mail"
"""


def _topics_toml() -> str:
    # The kernel topics tracker watches by default, written out: a config should say what it
    # watches (a config without [[topics]] gets a warning).
    out = []
    for t in DEFAULT_TOPICS:
        out.append(
            f'\n[[topics]]\nname = "{t.name}"\npaths = {list(t.paths)!r}\n'
            f"symbols = {list(t.symbols)!r}\nkeywords = {list(t.keywords)!r}\n"
        )
    return "".join(out).replace("'", '"')


def prepare_demo(directory: Path) -> Path:
    """Build the world afresh in ``directory`` and return the path of its config."""
    build_demo_world(directory)
    return write_demo_config(directory)


def build_demo_world(directory: Path) -> SampleWorld:
    directory = directory.resolve()
    if directory.exists():
        if not (directory / MARKER).exists() and any(directory.iterdir()):
            raise ConfigError(
                f"{directory} exists and was not made by 'tracker demo'; choose another --dir"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by tracker demo; safe to delete\n")
    world = build_world(directory / "linux")
    write_mails(world, directory / "mail")
    return world


def write_demo_config(directory: Path) -> Path:
    directory = directory.resolve()
    cfg = directory / "tracker.toml"
    cfg.write_text(DEMO_CONFIG.format(db=directory / "tracker.db") + _topics_toml())
    return cfg
