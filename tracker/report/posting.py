"""The text ``tracker status`` prints for a posting (series, versions, reviews, -mm, merged)."""

from __future__ import annotations

from tracker.store.postings import PostingView, ReviewView


def _reviews(reviews: tuple[ReviewView, ...], indent: str) -> list[str]:
    return [f"{indent}{r.kind}: {r.who} (in <{r.message_id}>)" for r in reviews]


def posting_text(p: PostingView) -> str:
    latest = p.latest
    state = "complete" if latest.complete else "incomplete"
    lines = [
        f"posting: {p.subject}" + (f" ({p.author})" if p.author else ""),
        f"  latest: v{latest.version}, {len(latest.patches)} of {latest.total} patches, {state}",
        f"  lists: {', '.join(p.lists) or 'unknown'}",
    ]
    for name, state_mm in p.mm:
        lines.append(f"  -mm: {name} ({state_mm})")
    merged = p.commits
    lines.append(
        f"  merged: {len(merged)} commit(s)" if merged else "  merged: not in mainline yet"
    )
    for v in p.versions:
        when = f" {v.posted_at:%Y-%m-%d}" if v.posted_at else ""
        done = "complete" if v.complete else "incomplete"
        lines.append(f"  v{v.version}{when}: {v.total} patch(es), {done}, <{v.root_message_id}>")
        lines += _reviews(v.cover_reviews, "      cover ")
        for patch in v.patches:
            pos = f"{patch.index}/{v.total}" if patch.index else "-"
            tail = f" -> {patch.commit[:12]}" if patch.commit else ""
            lines.append(f"    {pos:>5} {patch.subject}{tail}")
            if patch.cc_stable:
                lines.append(f"          Cc: stable ({', '.join(patch.cc_stable)})")
            for f in patch.fixes:
                lines.append(f"          Fixes: {f}")
            lines += _reviews(patch.reviews, "          ")
    return "\n".join(lines) + "\n"
