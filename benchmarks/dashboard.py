"""Dashboard write benchmark on the world of the dashboard tests (tests/dashworld.py), 1,000 fixes
or --fixes more.

The world (two branches, the fixes, 700 backports, stored verdicts and a FAILED mail) is built
and synced in a child process, so that this process's peak RSS is the dashboard's. Then it times:

- ``write``: ``tracker dashboard`` as the CLI runs it (plan per branch, gather, render, swap in);
- ``batched reads``: what the change pages read (timelines and graph neighbours of every change)
  as ``write`` reads it, in a few set-based queries per 500 changes;
- ``per-change reads`` (baseline): the same reads one change at a time through the single-change
  calls (``queries.timeline`` / ``queries.neighbours``), the access pattern ``write`` used before;
- ``json.dump`` (baseline): serialising the change pages' data, a floor for writing them at all.

Each line gives wall time, SQL statements issued (counted with a ``before_cursor_execute``
event) and, for ``write``, the peak RSS of this process at that point.

    .venv/bin/python benchmarks/dashboard.py [--fixes 5000] [--workdir DIR] [--keep] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event

from tracker import usecases
from tracker.config import load_config
from tracker.report import queries as q
from tracker.report.dashboard import gather
from tracker.store.db import Store


def _build(root: Path, n_fixes: int) -> None:
    from tests import dashworld

    world = dashworld.build(root, n_fixes)
    world.store.close()


class Counter:
    """SQL statements sent to the database while a block runs."""

    def __init__(self, store: Store) -> None:
        self.n = 0
        event.listen(store.engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.n += 1

    @contextmanager
    def block(self) -> Iterator[list[int]]:
        start = self.n
        out: list[int] = []
        yield out
        out.append(self.n - start)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(counter: Counter, fn: Callable[[], object]) -> tuple[float, int, object]:
    with counter.block() as n:
        t = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - t
    return elapsed, n[0], result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="where to build the world (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the world and the site")
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile of write")
    ap.add_argument("--fixes", type=int, default=1000, help="fixes in the world (at least 1000)")
    ap.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_only:
        _build(args.build_only, args.fixes)
        return

    root = args.workdir or Path(tempfile.mkdtemp(prefix="tracker-dash-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--fixes",
                str(args.fixes),
                "--build-only",
                str(root / "world"),
            ],
            check=True,
        )
        print(f"world built and synced in {time.perf_counter() - t:.1f} s (child process)")
        config = load_config(root / "world" / "tracker.toml")
        store = usecases.open_store(config)
        counter = Counter(store)
        site = root / "site"

        prof = cProfile.Profile() if args.profile else None
        if prof:
            prof.enable()
        write_s, write_n, report = _timed(
            counter, lambda: usecases.write_dashboard(config, store, site)
        )
        if prof:
            prof.disable()
        rss = _rss_mib()
        changes = getattr(report, "changes", 0)
        pages = getattr(report, "pages", 0)

        # The change pages' keys, as the site names them (every change here has a full sha).
        shas = sorted(p.name[len("change-") : -len(".html")] for p in site.glob("change-*.html"))
        with store.session() as s:

            def batched() -> object:
                return q.timelines(s, shas), q.neighbours_of(s, shas)

            def per_change() -> object:
                return {sha: q.timeline(s, sha) for sha in shas}, {
                    sha: q.neighbours(s, sha) for sha in shas
                }

            b_s, b_n, b_res = _timed(counter, batched)
            p_s, p_n, p_res = _timed(counter, per_change)
        same = b_res == p_res

        def plans_and_gather() -> object:
            plans = [usecases.plan(config, store, b.name) for b in config.branches]
            return gather(config, store, plans, lambda: datetime.now(UTC))

        g_s, g_n, data = _timed(counter, plans_and_gather)
        changes_data = data.changes  # type: ignore[attr-defined]
        j_s, _, _ = _timed(counter, lambda: json.dump(changes_data, io.StringIO(), indent=2))

        print(f"{changes} change pages, {pages} pages in all; load {_load()}")
        rows = [
            ("write (tracker dashboard)", write_s, write_n, f"{rss:.0f} MiB peak RSS"),
            ("gather (plans and all page data)", g_s, g_n, ""),
            ("batched reads of the change pages", b_s, b_n, ""),
            ("per-change reads (baseline)", p_s, p_n, f"{p_s / b_s:.1f}x the batched time"),
            ("json.dump of the change data (baseline)", j_s, 0, f"write is {write_s / j_s:.1f}x"),
        ]
        for name, sec, n, note in rows:
            print(f"  {name:<42} {sec:8.2f} s {n:7d} statements  {note}")
        print(f"  batched and per-change reads give the same timelines and graphs: {same}")
        if prof:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
            print(out.getvalue())
        store.close()
        if not same:
            sys.exit("batched and per-change reads differ")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(root, ignore_errors=True)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
