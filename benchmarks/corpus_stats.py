"""What tracker makes of a real public-inbox mirror: messages, series, completeness, reviews.

Syncs the mirror (a bundle such as the sparclinux corpus, cloned into a temporary inbox, or an
existing inbox directory) into a fresh SQLite store with the ``public-inbox-mirror`` source and
prints counts that show whether series survive real archive order: how many series and versions,
how many versions hold every patch, how many patches numbered 2+ belong to no series, review
trailers recorded from replies, cross-posts, and ``Fixes:`` lines stored as invalid.

Run: ``.venv/bin/python benchmarks/corpus_stats.py /work/shared/corpus/sparclinux-2019-2026.bundle``
(or ``--inbox DIR`` for an inbox with ``git/N.git`` epochs). Works on older schemas too, so the
same script measures the code before and after a change.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import inspect, text

from tracker import usecases
from tracker.config import parse_config
from tracker.store.db import Store

_QUERIES: tuple[tuple[str, str], ...] = (
    ("messages", "SELECT count(*) FROM messages"),
    ("patches (kind patch)", "SELECT count(*) FROM messages WHERE kind = 'patch'"),
    ("series", "SELECT count(*) FROM series"),
    ("series versions", "SELECT count(*) FROM series_versions"),
    ("versions complete", "SELECT count(*) FROM series_versions WHERE complete"),
    (
        "series with 2+ versions",
        "SELECT count(*) FROM (SELECT series_id FROM series_versions GROUP BY series_id "
        "HAVING count(*) > 1)",
    ),
    (
        "patches numbered 2+ in no series",
        "SELECT count(*) FROM messages WHERE kind = 'patch' AND series_index >= 2 "
        "AND series_version_id IS NULL",
    ),
    (
        "patches in no series (any number)",
        "SELECT count(*) FROM messages WHERE kind = 'patch' AND series_version_id IS NULL",
    ),
    (
        "review trailers on patches (from replies)",
        "SELECT count(*) FROM trailers t JOIN messages m ON m.message_id = t.message_id "
        "WHERE t.kind IN ('acked-by', 'reviewed-by', 'tested-by') AND m.kind = 'patch' "
        "AND t.note IS NOT NULL AND t.note != t.message_id",
    ),
    (
        "invalid Fixes: (stored as invalid)",
        "SELECT count(*) FROM trailers WHERE kind = 'invalid' AND value LIKE 'Fixes:%'",
    ),
)
_LISTS = (
    "messages on 2+ lists",
    "SELECT count(*) FROM (SELECT message_id FROM message_lists GROUP BY message_id "
    "HAVING count(*) > 1)",
)


def _inbox_from_bundle(bundle: Path, work: Path) -> Path:
    # Named after the list (sparclinux-2019-2026.bundle -> sparclinux), as mirrors are.
    inbox = work / bundle.name.split("-")[0].split(".")[0]
    (inbox / "git").mkdir(parents=True)
    subprocess.run(
        ["git", "clone", "-q", "--mirror", str(bundle), str(inbox / "git" / "0.git")], check=True
    )
    return inbox


def _time_series_pass(store: Store) -> None:
    """The series/review pass alone, over every stored message (what a first sync costs)."""
    from tracker.ingest.series import settle

    with store.engine.begin() as conn:
        conn.execute(text("UPDATE messages SET settled = NULL"))
    with store.session() as s:
        t0 = time.perf_counter()
        c = settle(s)
        took = time.perf_counter() - t0
    print(
        f"series pass over all {c.messages} messages ({c.senders} senders): {took:.2f} s, "
        f"{c.series} series, {c.versions} versions, {c.reviews} review trailers attributed"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path, nargs="?", help="a public-inbox epoch as a git bundle")
    ap.add_argument("--inbox", type=Path, help="an inbox directory (instead of a bundle)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if (args.bundle is None) == (args.inbox is None):
        ap.error("give a bundle or --inbox")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tracker-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        inbox = args.inbox or _inbox_from_bundle(args.bundle, work)
        cfg = parse_config(
            {
                "database": {"url": f"sqlite:///{work / 'tracker.db'}"},
                "repositories": [{"name": "l", "path": str(work)}],
                "sources": [{"name": "mirror", "kind": "public-inbox-mirror", "path": str(inbox)}],
            },
            None,
        )
        store = usecases.open_store(cfg)
        t0 = time.perf_counter()
        (rep,) = usecases.sync_sources(cfg, store)
        took = time.perf_counter() - t0
        print(
            f"synced {rep.counts.documents} documents in {took:.1f} s "
            f"({rep.counts.duplicates} duplicate documents, {len(rep.counts.errors)} errors)"
        )
        queries = list(_QUERIES)
        if inspect(store.engine).has_table("message_lists"):
            queries.append(_LISTS)
            _time_series_pass(store)
        with store.engine.connect() as conn:
            for label, sql in queries:
                print(f"{label:>44}: {conn.scalar(text(sql))}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
