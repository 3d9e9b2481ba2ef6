"""The use cases: one plain function per verb, called alike by the CLI, the tests and the
benchmarks (the CLI only parses arguments, calls one of these and prints).

- :mod:`~tracker.usecases.sync`: ``sync``, ``sync_sources``, ``reparse``.
- :mod:`~tracker.usecases.plans`: ``plan``, ``store_plans``, ``status``/``posting_status``, ``why``.
- :mod:`~tracker.usecases.simulation_view`: stored ``check`` results as plan and status show them.
- :mod:`~tracker.usecases.check`: ``check_plan``, ``check_commits``, ``check_series``.
- :mod:`~tracker.usecases.email`: the mail context and the four kinds of stable mail.
- :mod:`~tracker.usecases.dashboard`: ``write_dashboard``.

The check use cases load the simulator (pygit2) and the mail parsers, a third of a second that
``plan`` or ``status`` should not pay: they are imported on first use of their names here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tracker.store.db import open_store
from tracker.usecases.dashboard import write_dashboard
from tracker.usecases.email import (
    backport_mails,
    digest_mails,
    failed_mail,
    mail_context,
    review_series,
)
from tracker.usecases.plans import (
    PostingStatus,
    StatusReport,
    StatusRow,
    WhyLink,
    WhyReport,
    decide_plan,
    find_commit,
    plan,
    plan_inputs,
    posting_status,
    save_plan,
    status,
    store_plans,
    why,
)
from tracker.usecases.simulation_view import (
    SimulationSummary,
    plan_dict,
    plan_simulations,
    status_dict,
    status_simulations,
)
from tracker.usecases.sync import mark_stale_runs, reparse, sync, sync_sources

if TYPE_CHECKING:
    from tracker.usecases.check import (
        CheckReport,
        check_commits,
        check_plan,
        check_series,
        search_limits,
    )

_LAZY = {
    name: "tracker.usecases.check"
    for name in ("CheckReport", "check_commits", "check_plan", "check_series", "search_limits")
}

__all__ = [
    "CheckReport",
    "PostingStatus",
    "SimulationSummary",
    "StatusReport",
    "StatusRow",
    "WhyLink",
    "WhyReport",
    "backport_mails",
    "check_commits",
    "check_plan",
    "check_series",
    "decide_plan",
    "digest_mails",
    "failed_mail",
    "find_commit",
    "mail_context",
    "mark_stale_runs",
    "open_store",
    "plan",
    "plan_dict",
    "plan_inputs",
    "plan_simulations",
    "posting_status",
    "reparse",
    "review_series",
    "save_plan",
    "search_limits",
    "status",
    "status_dict",
    "status_simulations",
    "store_plans",
    "sync",
    "sync_sources",
    "why",
    "write_dashboard",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
