"""What every command shares: the ``--config`` and ``--json`` options and the config they name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracker.config import Config, load_config

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (else $TRACKER_CONFIG, ./tracker.toml, XDG)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

# The top-level --config (``tracker -c FILE plan ...``), set by the app's callback.
state: dict[str, Path | None] = {"config": None}


def config_of(local: Path | None = None) -> Config:
    """The command's own --config, else the top-level one, else the usual search."""
    return load_config(local or state["config"])


def config_in(ctx: typer.Context, local: Path | None) -> Config:
    """:func:`config_of` for commands that also run on an app without this package's callback
    (tests register them on their own root): the root's --config is read from ``ctx``."""
    root = ctx.find_root().params.get("config")
    return load_config(local or (root if isinstance(root, Path | str) else None))
