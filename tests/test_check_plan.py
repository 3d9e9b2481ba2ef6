"""``tracker check --plan`` as a process: atomic storage when killed, progress, the search switch.

The run is a real ``python -m tracker`` on the synced sample world (real git, real SQLite).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import select as sql_select

from tests.conftest import Synced
from tests.ptyrun import run_on_a_terminal
from tracker import usecases
from tracker.cli.check import PAUSE_ENV
from tracker.store.models import BranchPrerequisite, BranchState

B61 = "linux-6.1.y"


def _snapshot(synced: Synced) -> tuple[list[Any], list[Any]]:
    with synced.store.session() as s:
        states = sorted(
            (r.sha, r.status, r.reason, r.evidence, r.position, r.simulation, r.computed_at)
            for r in s.scalars(sql_select(BranchState))
        )
        prereqs = sorted(
            (r.fix_sha, r.prerequisite_sha, r.evidence)
            for r in s.scalars(sql_select(BranchPrerequisite))
        )
    return states, prereqs


def _args(synced: Synced, *extra: str) -> list[str]:
    cfg = str(synced.root / "tracker.toml")
    return [sys.executable, "-m", "tracker", "--config", cfg, "check", B61, "--plan", *extra]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRACKER_CONFIG", PAUSE_ENV)}
    env.update(extra)
    return env


def _run_until_paused(synced: Synced, at: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        _args(synced),
        env=_env(**{PAUSE_ENV: at}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 120
    while b"tracker: paused after" not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            seen += os.read(proc.stderr.fileno(), 4096)
    return proc


def test_killed_or_interrupted_run_leaves_the_store_as_it_was(synced: Synced) -> None:
    usecases.plan(synced.config, synced.store, B61)  # a stored plan, as cron would have left
    before = _snapshot(synced)
    assert before[0] and not before[1]

    # Round 1 of the sample world verifies two prerequisites; round 2 re-plans with them.
    # The old code had stored them (and a new plan) by then.
    proc = _run_until_paused(synced, "2:1")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert _snapshot(synced) == before

    proc = _run_until_paused(synced, "2:2")
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=60) == 130
    assert _snapshot(synced) == before

    # The same run, not stopped, does change the store: the test above can fail.
    done = subprocess.run(_args(synced, "--json"), env=_env(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _snapshot(synced)
    assert len(after[1]) == 2 and after[0] != before[0]
    assert done.stderr == b""  # not a terminal: no progress


def test_progress_on_a_terminal_and_quiet(synced: Synced) -> None:
    def run(*extra: str) -> str:
        return run_on_a_terminal(_args(synced, *extra), _env())

    total = len(usecases.plan(synced.config, synced.store, B61).ordered)
    shown = run()
    assert f"round 1  step {total}/{total}  " in shown and "1 not applied" in shown
    # round 2 plans the verified prerequisite as a step of its own
    assert f"round 2  step {total + 1}/{total + 1}  " in shown
    assert run("--quiet") == ""


def test_prerequisites_off_never_blames_end_to_end(synced: Synced) -> None:
    off = subprocess.run(
        _args(synced, "--json", "--prerequisites", "off"), env=_env(), capture_output=True
    )
    assert off.returncode == 0, off.stderr
    data = json.loads(off.stdout)
    assert data["stats"]["mode"] == "off" and data["stats"]["blame_calls"] == 0
    assert data["prerequisites_added"] == [] and data["rounds"] == 1
    assert "conflict" in {st["verdict"] for st in data["steps"]}

    on = subprocess.run(_args(synced, "--json"), env=_env(), capture_output=True)
    data = json.loads(on.stdout)
    assert data["stats"]["mode"] == "bounded" and data["stats"]["blame_calls"] > 0
    assert data["prerequisites_added"]


def test_bad_prerequisites_value_is_a_usage_error(synced_ro: Synced) -> None:
    cfg = str(synced_ro.root / "tracker.toml")
    args = [sys.executable, "-m", "tracker", "--config", cfg, "check", B61, "--plan"]
    p = subprocess.run([*args, "--prerequisites", "some"], env=_env(), capture_output=True)
    assert p.returncode == 2 and b"off, bounded or full" in p.stderr


def test_config_example_values_reach_the_limits(synced_ro: Synced) -> None:
    from tracker.simulate import PrerequisiteMode
    from tracker.usecases import search_limits

    lim = search_limits(synced_ro.config)
    assert (lim.mode, lim.max_commits, lim.max_lines) == (PrerequisiteMode.BOUNDED, 3, 200)
    lim = search_limits(synced_ro.config, prerequisites="full", step_budget=1.5, run_budget=0)
    assert (lim.mode, lim.step_budget, lim.run_budget) == (PrerequisiteMode.FULL, 1.5, 0.0)
