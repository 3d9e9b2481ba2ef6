"""Checksums of what a git sync stores, to show that a faster sync stores the same thing.

    .venv/bin/python benchmarks/store_checksum.py DB [DB ...]

For each SQLite store: per table (commits, trailers, edges, commit_topics, branch_commits, tags)
the row count and a SHA-256 over its rows sorted by content. Surrogate ids (trailers.id,
edges.id) are left out of the content hash, since only their order of allocation could differ;
a second hash "with ids" says whether even that stayed the same. Two stores synced from one
history by two versions of the code must print the same lines (apart from the path).
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

# table -> (columns hashed, surrogate id column or None)
TABLES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "commits": (
        (
            "sha",
            "subject",
            "author_name",
            "author_email",
            "author_time",
            "commit_time",
            "message",
            "mainline",
            "mainline_order",
            "first_release",
            "release_index",
            "patch_id",
            "paths_key",
            "upstream_sha",
            "upstream_rule",
            "is_revert",
            "change_id",
            "link_rule",
        ),
        None,
    ),
    "trailers": (("commit_sha", "message_id", "kind", "value", "subject", "note"), "id"),
    "edges": (("kind", "src", "dst_raw", "dst", "rule", "evidence", "flagged"), "id"),
    "commit_topics": (("sha", "topic", "rule"), None),
    "branch_commits": (("branch_id", "sha", "position", "release"), None),
    "tags": (("name", "sha", "kind", "branch", "ordinal"), None),
}


def _digest(rows: list[tuple[object, ...]]) -> str:
    h = hashlib.sha256()
    for row in sorted(repr(r) for r in rows):
        h.update(row.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def checksums(db: Path) -> dict[str, str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out: dict[str, str] = {}
    try:
        for table, (cols, ident) in TABLES.items():
            rows = con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            line = f"{len(rows):>8} rows  content {_digest(rows)}"
            if ident:
                with_ids = con.execute(f"SELECT {ident}, {', '.join(cols)} FROM {table}")
                line += f"  with ids {_digest(with_ids.fetchall())}"
            out[table] = line
    finally:
        con.close()
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for arg in argv:
        print(arg)
        for table, line in checksums(Path(arg)).items():
            print(f"  {table:<15} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
