"""Trailer rows for the store, from a parsed commit message or mail (one shape for both)."""

from __future__ import annotations

import json
from typing import Any

from tracker.parse.trailers import Trailers


def trailer_rows(
    t: Trailers, *, commit_sha: str | None = None, message_id: str | None = None
) -> list[dict[str, Any]]:
    """One row per reference as written; graph edges are resolved from these later."""
    rows: list[dict[str, Any]] = []

    def add(kind: str, value: str, subject: str | None = None, note: str | None = None) -> None:
        rows.append(
            {
                "commit_sha": commit_sha,
                "message_id": message_id,
                "kind": kind,
                "value": value[:998],
                "subject": subject,
                "note": note,
            }
        )

    for f in t.fixes:
        add("fixes", f.sha, f.subject)
    for d in t.stable_dep_of:
        add("stable-dep-of", d.sha, d.subject)
    if t.upstream:
        add("upstream", t.upstream, None, t.upstream_rule)
    for r in t.reverts:
        add("reverts", r)
    for r in t.reverts_upstream:
        add("reverts-upstream", r)
    for m in t.link_msgids:
        add("link", m)
    for n in t.cc_stable:
        note = {
            "min_version": list(n.min_version) if n.min_version else None,
            "prerequisite": n.prerequisite.sha if n.prerequisite else None,
            "noautosel": n.noautosel,
        }
        add("cc-stable", n.address, n.note, json.dumps(note))
    for bad in t.invalid:
        add("invalid", bad)
    return rows
