"""Commits a reference could name: by abbreviated sha (many at once) or by subject.

The edges pass resolves every ``Fixes:`` of a history; these lookups are what it spends its
queries on, so they are written per database where one form is much faster than the other.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import String, and_, column, select, values
from sqlalchemy.orm import Session

from tracker.graph import Candidate
from tracker.store.models import Commit
from tracker.store.queries import chunked


def prefetch_prefixes(s: Session, prefixes: set[str]) -> dict[str, list[Candidate]]:
    """Candidates for many abbreviated shas, a few hundred index ranges per query.

    A query per reference costs a round trip each on PostgreSQL (seconds per thousand).
    """
    wanted = sorted(p for p in prefixes if 4 <= len(p) < 40 and all(c in _HEXDIGITS for c in p))
    found: dict[str, list[Candidate]] = {p: [] for p in wanted}
    postgres = s.get_bind().dialect.name == "postgresql"
    for chunk in chunked(wanted, 200):
        rows = _pg_ranges(s, chunk) if postgres else _sqlite_ranges(s, chunk)
        # Prefixes may nest ("abcd1234" and "abcd12"): try each length present in the chunk.
        mine, lengths = set(chunk), sorted({len(p) for p in chunk})
        for sha, subject, mainline in rows:
            for n in lengths:
                if sha[:n] in mine:
                    found[sha[:n]].append(Candidate(sha, subject, mainline))
    # As the one-prefix query answers: the first three in sha order (its index range scan);
    # candidates are tuples led by their (unique) sha.
    return {p: sorted(c)[:3] for p, c in found.items()}


_HEXDIGITS = frozenset("0123456789abcdef")


def _pg_ranges(s: Session, prefixes: list[str]) -> list[tuple[str, str, bool]]:
    # PostgreSQL plans two hundred OR'd ranges as a scan of the whole table (a minute at 100k
    # commits); a join with the ranges as rows is an index probe per prefix.
    v = values(column("lo", String), column("hi", String), name="prefixes").data(
        [(p, p + "g") for p in prefixes]
    )
    cols = (Commit.sha, Commit.subject, Commit.mainline)
    stmt = select(*cols).join_from(v, Commit, and_(Commit.sha >= v.c.lo, Commit.sha < v.c.hi))
    return [(sha, subject, mainline) for sha, subject, mainline in s.execute(stmt)]


def _sqlite_ranges(s: Session, prefixes: list[str]) -> Iterator[tuple[str, str, bool]]:
    """Commits in any of the prefixes' sha ranges, OR'd (SQLite probes the index per range).

    Written as SQL text: building the same statement from two hundred SQLAlchemy comparisons
    per query cost more than running it (seconds at a kernel's Fixes: count)."""
    ranges = " OR ".join(["(sha >= ? AND sha < ?)"] * len(prefixes))
    bounds = tuple(b for p in prefixes for b in (p, p + "g"))
    sql = f"SELECT sha, subject, mainline FROM commits WHERE {ranges}"
    for sha, subject, mainline in s.connection().exec_driver_sql(sql, bounds):
        yield sha, subject, bool(mainline)


def prefix_candidates(s: Session, prefix: str) -> list[Candidate]:
    p = prefix.lower()
    cols = (Commit.sha, Commit.subject, Commit.mainline)
    if len(p) >= 40:
        stmt = select(*cols).where(Commit.sha == p)
    else:
        stmt = select(*cols).where(Commit.sha >= p, Commit.sha < p + "g").limit(3)
    return [Candidate(sha, subject, mainline) for sha, subject, mainline in s.execute(stmt)]


def subject_candidates(s: Session, subject: str) -> list[Candidate]:
    cols = (Commit.sha, Commit.subject, Commit.mainline)
    stmt = select(*cols).where(Commit.subject == subject).limit(3)
    return [Candidate(sha, subj, mainline) for sha, subj, mainline in s.execute(stmt)]
