"""Benchmark: the same first sync, no-op sync and plans on SQLite and on PostgreSQL.

Generates benchmarks/plan.py's kernel-shaped world (a --commits mainline, 1 in 8 commits with
Fixes:, three stable branches), then runs tracker's first sync into a SQLite file and into a
real PostgreSQL database (a private server started from Debian's binaries, Unix socket only, as
the tests do; or --postgres-url), each in a new process, and prints both with the ratio. Goal
of the project: PostgreSQL within 2x of SQLite.

    .venv/bin/python benchmarks/sync_stores.py [--commits 100000] [--stable 3000,6000,8000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.plan import BRANCHES, generate, write_config
from tests.pgserver import PostgresServer

CHILD = """
import json, resource, sys, time
from tracker import usecases
from tracker.config import load_config
cfg = load_config(sys.argv[1])
store = usecases.open_store(cfg)
out = {}
t = time.perf_counter(); usecases.sync(cfg, store); out["first_sync_s"] = time.perf_counter() - t
t = time.perf_counter(); usecases.sync(cfg, store); out["noop_sync_s"] = time.perf_counter() - t
for b in cfg.branches:
    t = time.perf_counter(); p = usecases.plan(cfg, store, b.name)
    out["plan_" + b.name] = [time.perf_counter() - t, len(p.steps)]
out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run_child(cfg: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(cfg)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"sync failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=100_000)
    ap.add_argument("--stable", default="3000,6000,8000", help="backports per stable branch")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--postgres-url", help="an existing server instead of a private one")
    ap.add_argument("--work", type=Path, help="keep the world here (default: a temp dir)")
    args = ap.parse_args()
    counts = dict(zip([n for n, _ in BRANCHES], map(int, args.stable.split(",")), strict=True))
    work = args.work or Path(tempfile.mkdtemp(prefix="tracker-sync-stores-"))
    repo = work / "linux.git"
    if not repo.exists():
        t0 = time.perf_counter()
        generate(repo, args.commits, counts, args.seed)
        print(
            f"world: {args.commits:,} mainline commits, generated in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    figures: dict[str, dict[str, object]] = {}
    lite = work / "sqlite"
    lite.mkdir(exist_ok=True)
    (lite / "tracker.db").unlink(missing_ok=True)
    figures["sqlite"] = run_child(write_config(lite, repo))

    server = None
    url = args.postgres_url
    if url is None:
        os.environ.pop("TRACKER_TEST_POSTGRES_URL", None)
        server = PostgresServer()
        server.start()
        url = server.create_database()
    try:
        pg = work / "postgresql"
        pg.mkdir(exist_ok=True)
        cfg = write_config(pg, repo)
        text = cfg.read_text().replace(f'"sqlite:///{pg / "tracker.db"}"', f'"{url}"')
        cfg.write_text(text)
        figures["postgresql"] = run_child(cfg)
    finally:
        if server is not None:
            server.stop()

    print(f"{'':24}{'SQLite':>12}{'PostgreSQL':>12}{'ratio':>8}")
    for key in figures["sqlite"]:
        a, b = figures["sqlite"][key], figures["postgresql"][key]
        if isinstance(a, list) and isinstance(b, list):
            a, b = a[0], b[0]
        if isinstance(a, int | float) and isinstance(b, int | float):
            unit = "MiB" if key.endswith("mib") else "s"
            ratio = f"{b / a:.2f}x" if a else "-"
            print(f"{key:24}{a:>10.2f}{unit:>2}{b:>10.2f}{unit:>2}{ratio:>8}")


if __name__ == "__main__":
    main()
