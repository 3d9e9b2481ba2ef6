"""Ingest benchmark: a generated public-inbox v2 mirror through the full sources pipeline.

Prints messages per second and peak memory for ``tracker``'s mirror ingest (read, keep the raw
document compressed, parse headers/diff/trailers, record messages, series and trailers in SQLite),
next to the baseline in the same run: reading the same mirror without parsing or storing (git's
own cost plus the reader). Run: ``.venv/bin/python benchmarks/ingest.py [-n 20000]``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.pimirror_gen import generate
from tracker import service
from tracker.config import parse_config
from tracker.ingest.pimirror import iter_new_messages


def _peak_mib() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--messages", type=int, default=20_000)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tracker-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    inbox = work / "inbox"
    try:
        gen = generate(inbox, args.messages, 10_000, 1)
        print(f"generated {args.messages} messages in {gen:.1f} s")

        t0 = time.perf_counter()
        scan = iter_new_messages(inbox, {})
        read = sum(1 for _ in scan)
        baseline = time.perf_counter() - t0

        cfg = parse_config(
            {
                "database": {"url": f"sqlite:///{work / 'tracker.db'}"},
                "repositories": [{"name": "l", "path": str(work)}],
                "sources": [{"name": "mirror", "kind": "public-inbox-mirror", "path": str(inbox)}],
            },
            None,
        )
        store = service.open_store(cfg)
        t0 = time.perf_counter()
        (rep,) = service.sync_sources(cfg, store)
        took = time.perf_counter() - t0
        t0 = time.perf_counter()
        (again,) = service.sync_sources(cfg, store)
        noop = time.perf_counter() - t0
        me, kids = _peak_mib()
        db_mib = (work / "tracker.db").stat().st_size / 2**20
        print(
            f"baseline read (no parse, no store): {read} messages in {baseline:.2f} s, "
            f"{read / baseline:,.0f} messages/s"
        )
        print(
            f"tracker ingest: {rep.counts.messages} messages in {took:.2f} s, "
            f"{rep.counts.messages / took:,.0f} messages/s "
            f"({took / baseline:.1f}x the baseline), {len(rep.counts.errors)} errors"
        )
        print(
            f"second sync (nothing new): {noop * 1000:.0f} ms, "
            f"{again.counts.messages} messages added"
        )
        print(
            f"peak RSS: tracker {me:.0f} MiB, largest git child {kids:.0f} MiB; "
            f"database {db_mib:.1f} MiB"
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
