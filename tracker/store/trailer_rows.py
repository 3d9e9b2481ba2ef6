"""Trailer rows for the store, from a parsed commit message or mail (one shape for both)."""

from __future__ import annotations

import json
from typing import Any

from tracker.parse.trailers import Trailers


def trailer_rows(
    t: Trailers, *, commit_sha: str | None = None, message_id: str | None = None
) -> list[dict[str, Any]]:
    """One row per reference as written; graph edges are resolved from these later."""
    return [
        {
            "commit_sha": commit_sha,
            "message_id": message_id,
            "kind": kind,
            "value": value,
            "subject": subject,
            "note": note,
        }
        for kind, value, subject, note in _references(t)
    ]


def trailer_tuples(t: Trailers, commit_sha: str) -> list[tuple[str, None, str, str, Any, Any]]:
    """The rows of :func:`trailer_rows` for a commit, as (commit_sha, message_id, kind, value,
    subject, note) tuples: a first sync makes one per trailer of a whole history."""
    return [(commit_sha, None, *ref) for ref in _references(t)]


def _references(t: Trailers) -> list[tuple[str, str, str | None, str | None]]:
    # Appends written out (no helper per call): a first sync runs this for every commit.
    refs: list[tuple[str, str, str | None, str | None]] = []
    for f in t.fixes:
        # A malformed tag read anyway says how, so every edge built from it can say so too.
        note = json.dumps({"repaired": f.repair}) if f.repair else None
        refs.append(("fixes", f.sha[:998], f.subject, note))
    for d in t.stable_dep_of:
        refs.append(("stable-dep-of", d.sha[:998], d.subject, None))
    if t.upstream:
        refs.append(("upstream", t.upstream[:998], None, t.upstream_rule))
    for r in t.reverts:
        refs.append(("reverts", r[:998], None, None))
    for r in t.reverts_upstream:
        refs.append(("reverts-upstream", r[:998], None, None))
    for m in t.link_msgids:
        refs.append(("link", m[:998], None, None))
    for n in t.cc_stable:
        nomination = {
            "min_version": list(n.min_version) if n.min_version else None,
            "prerequisite": n.prerequisite.sha if n.prerequisite else None,
            "noautosel": n.noautosel,
        }
        refs.append(("cc-stable", n.address[:998], n.note, json.dumps(nomination)))
    for bad in t.invalid:
        refs.append(("invalid", bad[:998], None, None))
    return refs


def repair_of(note: str | None) -> str | None:
    """How a stored Fixes: row was repaired (see :func:`trailer_rows`), or None."""
    if not note or not note.startswith("{"):
        return None
    try:
        value = json.loads(note).get("repaired")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def with_repair(evidence: str, flagged: bool, note: str | None) -> tuple[str, bool]:
    """Evidence for an edge from a Fixes: row: a repaired tag is named and always flagged."""
    how = repair_of(note)
    if how is None:
        return evidence, flagged
    return f"{evidence}; malformed Fixes: tag repaired ({how})", True
