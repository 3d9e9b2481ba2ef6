"""``tracker init``, ``tracker db upgrade`` and ``tracker demo``: set-up and upkeep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracker import usecases
from tracker.cli.options import ConfigOpt, config_of
from tracker.cli.output import out, print_plan
from tracker.config import load_config, xdg_config_home
from tracker.errors import ConfigError

db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")


def init(
    path: Annotated[Path | None, typer.Argument(help="Where to write the config.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starting configuration (from config.example.toml)."""
    from tracker.paths import EXAMPLE_CONFIG

    target = path or xdg_config_home() / "tracker" / "config.toml"
    if target.exists() and not force:
        raise ConfigError("already exists (use --force to overwrite)", path=str(target))
    example = EXAMPLE_CONFIG
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    load_config(target)
    out.print(f"wrote {target}; edit the repository paths, then run 'tracker sync'")


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to build the sample world.")
    ] = Path("demo-world"),
) -> None:
    """Build the offline sample world, sync it and print the plan of every branch."""
    from tracker.sampleworld.demo import prepare_demo

    cfg_path = prepare_demo(directory)
    out.print(f"sample world built in {directory}/linux; config {cfg_path}")
    cfg = load_config(cfg_path)
    store = usecases.open_store(cfg)
    stats = usecases.sync(cfg, store)
    reports = usecases.sync_sources(cfg, store)
    out.print(
        f"synced {stats.mainline_commits} mainline commits, "
        f"{sum(stats.branch_commits.values())} stable commits, {stats.tags} tags, "
        f"{sum(r.counts.messages for r in reports)} mails"
    )
    for b in cfg.branches:
        # Simulate each plan in memory first, so prerequisites the simulator finds are in it.
        usecases.check_plan(cfg, store, b.name)
        p = usecases.plan(cfg, store, b.name)
        print_plan(p, usecases.plan_simulations(store, p))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Migrate the database to the latest schema (also done automatically on first use)."""
    from tracker.store.db import current_revision

    cfg = config_of(config)
    store = usecases.open_store(cfg)
    out.print(f"database at revision {current_revision(store.engine)}")
