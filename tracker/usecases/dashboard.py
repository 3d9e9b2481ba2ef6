"""Use case ``dashboard``: decide every branch's plan, then write the static site from them.

The pages themselves are :mod:`tracker.report.dashboard`'s (imported by the call: Jinja2 and the
page builders cost every other command a tenth of a second).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.config import Config
from tracker.store.db import Store
from tracker.usecases.plans import plan

if TYPE_CHECKING:
    from tracker.report.dashboard import DashboardReport
    from tracker.report.render import Renderer


def write_dashboard(
    config: Config,
    store: Store,
    out: Path,
    *,
    renderer: Renderer | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DashboardReport:
    """Write the whole site to ``out`` (swapped in once complete); the caller holds the run
    lock (:func:`tracker.lock.run_lock`)."""
    from tracker.report.dashboard import write_site

    # plan() also refreshes the stored decisions (BranchState), as a cron run should.
    plans = [plan(config, store, b.name) for b in config.branches]
    return write_site(config, store, out, plans, renderer=renderer, clock=clock)
