"""The static dashboard: an overview that puts what needs action first, paged lists of every
change per branch and section (:mod:`tracker.report.sections`), one page per branch and one per
change; each page also as JSON.

No JavaScript and nothing fetched from elsewhere: the pages are plain HTML with an inline style
sheet and inline SVG, readable from ``file://`` or any static web server. Every value reaches
HTML through Jinja2 autoescaping, and each page forbids scripts in its Content-Security-Policy,
so a subject like ``<script>...`` taken from a mail is shown as text and runs nothing.

The site is written to a fresh directory beside the target and swapped in with renames; a run
that fails half way leaves the previous dashboard exactly as it was (:func:`swap_in`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tracker import __version__
from tracker.config import BranchConfig, Config
from tracker.decide import ACTIONABLE, NEEDED, NOMINATED, Plan, Step, presence_in
from tracker.errors import ConfigError
from tracker.report import queries as q
from tracker.report.queueview import queue_page
from tracker.report.render import Renderer
from tracker.report.sections import ABSENT, IN_BASE, PRESENT, Group, Item, group
from tracker.store.db import Store
from tracker.store.postings import PostingView, pending_series
from tracker.store.snapshot import load_branch, load_world

# Column order of the overview: what needs work first.
STATUS_ORDER = (
    "prerequisite",
    NEEDED,
    NOMINATED,
    "unresolved",
    "in-branch",
    "released",
    "reverted",
    "not-needed",
)


def page_name(kind: str, key: str) -> str:
    """A file name safe on any file system for ``kind``-``key`` (branch names, shas)."""
    return f"{kind}-{re.sub(r'[^A-Za-z0-9._-]', '_', key)}"


def _status_order(statuses: set[str]) -> list[str]:
    known = [s for s in STATUS_ORDER if s in statuses]
    return known + sorted(statuses - set(STATUS_ORDER))


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d else None


# -- the dependency graph as SVG ---------------------------------------------------------------

NODE_W = 250
NODE_H = 46
GAP_X = 80
GAP_Y = 16
TOP = 34
MARGIN = 10
INDENT = 30
SUBJECT_CHARS = 36


@dataclass(frozen=True)
class GraphNode:
    sha: str
    label: str
    subject: str
    kind: str
    x: int
    y: int
    w: int
    href: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "label": self.label,
            "subject": self.subject,
            "kind": self.kind,
            "x": self.x,
            "y": self.y,
            "w": self.w,
            "h": NODE_H,
            "href": self.href,
            "text": _truncate(self.subject),
        }


@dataclass(frozen=True)
class GraphEdge:
    src: str
    dst: str
    relation: str
    points: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict[str, Any]:
        (x1, y1), (x2, y2) = self.points[-2], self.points[-1]
        return {
            "src": self.src,
            "dst": self.dst,
            "relation": self.relation,
            "points": " ".join(f"{x},{y}" for x, y in self.points),
            "label_x": (x1 + x2) // 2,
            "label_y": (y1 + y2) // 2 - 5,
        }


def _truncate(text: str, n: int = SUBJECT_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "\u2026"


def graph_layout(n: q.Neighbours, pages: set[str]) -> dict[str, Any]:
    """Three columns: what the change fixes | the change and its backports | what points at it.

    Backports hang under the change like a file tree (a trunk in the left gutter), and a fix of
    a backport sits to the right of the backport it fixes.
    """
    cols = (MARGIN, MARGIN + NODE_W + GAP_X, MARGIN + 2 * (NODE_W + GAP_X))
    step = NODE_H + GAP_Y

    def y(row: int) -> int:
        return TOP + row * step

    def href(sha: str) -> str | None:
        return f"{page_name('change', sha)}.html" if sha in pages else None

    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    c = n.change
    change = GraphNode(c.sha, c.sha[:12], c.subject, "change", cols[1], y(0), NODE_W, None)
    nodes.append(change)
    mid = NODE_H // 2
    left = [
        *((cul, "fixes", "culprit") for cul in n.culprits),
        *((pre, "needs", "prerequisite") for pre in n.prerequisites),
    ]
    for i, (other, relation, kind) in enumerate(left):
        node = GraphNode(
            other.sha, other.sha[:12], other.subject, kind, cols[0], y(i), NODE_W, href(other.sha)
        )
        nodes.append(node)
        edges.append(
            GraphEdge(
                c.sha,
                other.sha,
                relation,
                ((change.x, change.y + mid), (node.x + NODE_W, node.y + mid)),
            )
        )
    right = [
        *((f, "fixes", "fix") for f in n.fixed_by),
        *((r, "reverts", "revert") for r in n.reverted_by),
        *((p, "needs it", "dependent") for p in n.prerequisite_of),
    ]
    for i, (other, relation, kind) in enumerate(right):
        node = GraphNode(
            other.sha, other.sha[:12], other.subject, kind, cols[2], y(i), NODE_W, href(other.sha)
        )
        nodes.append(node)
        edges.append(
            GraphEdge(
                other.sha,
                c.sha,
                relation,
                ((node.x, node.y + mid), (change.x + NODE_W, change.y + mid)),
            )
        )
    row = max(1, len(right))
    trunk = cols[1] + INDENT // 2
    for bp, branch in n.backports:
        node = GraphNode(
            bp.sha,
            f"{bp.sha[:12]} \u00b7 {branch}",
            bp.subject,
            "backport",
            cols[1] + INDENT,
            y(row),
            NODE_W - INDENT,
            None,
        )
        nodes.append(node)
        edges.append(
            GraphEdge(
                c.sha,
                bp.sha,
                "backport",
                ((trunk, change.y + NODE_H), (trunk, node.y + mid), (node.x, node.y + mid)),
            )
        )
        fixes = [f for f, target in n.backport_fixes if target == bp.sha]
        for j, fix in enumerate(fixes):
            fnode = GraphNode(
                fix.sha,
                fix.sha[:12],
                fix.subject,
                "fix",
                cols[2],
                y(row + j),
                NODE_W,
                href(fix.sha),
            )
            nodes.append(fnode)
            edges.append(
                GraphEdge(
                    fix.sha,
                    bp.sha,
                    "fixes",
                    ((fnode.x, fnode.y + mid), (node.x + node.w, node.y + mid)),
                )
            )
        row += max(1, len(fixes))
    rows = max(row, len(left), 1)
    return {
        "width": cols[2] + NODE_W + MARGIN,
        "height": y(rows) - GAP_Y + MARGIN,
        "columns": [
            {"x": cols[0], "title": "fixes / needs"},
            {"x": cols[1], "title": "this change \u2192 backports"},
            {"x": cols[2], "title": "fixed / reverted / needed by"},
        ],
        "nodes": [nd.to_dict() for nd in nodes],
        "edges": [e.to_dict() for e in edges],
    }


# -- page data -------------------------------------------------------------------------------


def _simulation_view(sim: dict[str, Any] | None) -> dict[str, Any] | None:
    """The parts of a stored simulator verdict the pages show (the JSON keeps all of it)."""
    if not sim:
        return None
    conflicts = sim.get("conflicts")
    files = []
    if isinstance(conflicts, list):
        files = [str(f.get("path")) for f in conflicts if isinstance(f, dict) and f.get("path")]
    pre = sim.get("prerequisites")
    commits: list[str] = []
    if isinstance(pre, dict) and pre.get("found") and isinstance(pre.get("commits"), list):
        commits = [str(x) for x in pre["commits"]]
    blocked = sim.get("blocked_by")
    return {
        "verdict": str(sim.get("verdict", "unknown")),
        "detail": str(sim.get("detail") or ""),
        "files": files,
        "prerequisites": commits,
        "blocked_by": [str(b) for b in blocked] if isinstance(blocked, list) else [],
    }


def _step_view(st: Step, sim: dict[str, Any] | None, pages: set[str]) -> dict[str, Any]:
    d = st.to_dict()
    d["short"] = st.sha[:12]
    d["page"] = f"{page_name('change', st.sha)}.html" if st.sha in pages else None
    d["simulation"] = sim
    d["sim"] = _simulation_view(sim)
    return d


# Rows per status page file: an old branch has tens of thousands of released fixes, and pages
# of a few hundred rows stay quick to load, to search in and to print.
PAGE_ROWS = 500
# Items of each action section listed on the overview; the section's own pages list them all.
TOP_ITEMS = 10


def section_page(branch: str, key: str, n: int = 1) -> str:
    """File name (without extension) of page ``n`` of one branch's section."""
    name = page_name("status", f"{branch}-{key}")
    return name if n == 1 else f"{name}-{n}"


def _pages_of(n_items: int) -> int:
    return max(1, -(-n_items // PAGE_ROWS))


@dataclass
class SiteData:
    """Everything the pages show, gathered in one read of the store."""

    title: str
    generated: str
    plans: list[Plan]
    sims: dict[str, dict[str, dict[str, Any]]]
    changes: dict[str, dict[str, Any]]
    # Posted series not (all) in mainline yet: what maintainers will be asked about next.
    pending: list[dict[str, Any]] = field(default_factory=list)
    # Per branch, its items under their sections (action sections first).
    groups: dict[str, list[Group]] = field(default_factory=dict)


def _verdict(sim: dict[str, Any] | None) -> str | None:
    return str(sim.get("verdict")) if sim and sim.get("verdict") is not None else None


def _branch_items(
    s: Session,
    b: BranchConfig,
    p: Plan,
    sims: dict[str, dict[str, Any]],
    shas: Sequence[str],
    subjects: dict[str, str],
) -> list[Item]:
    """The plan's steps, then every other change of the site as this branch has it."""
    items = [
        Item(
            st.sha,
            st.subject,
            st.status,
            st.reason,
            st.evidence,
            st.position,
            _verdict(sims.get(st.sha)),
            st.topics,
            st.stable_sha,
            st.release,
        )
        for st in p.steps
    ]
    planned = {st.sha for st in p.steps}
    others = [sha for sha in shas if sha not in planned]
    if not others:
        return items
    # Mostly changes the base release has already; the evidence says which, or what else.
    view = load_branch(s, b)
    world = load_world(s, [], extra=others)
    presence = presence_in(view, world)
    for sha in others:
        info = world.commits.get(sha)
        present, why = presence(sha)
        in_base = bool(
            info
            and info.mainline
            and info.release_index is not None
            and info.release_index <= view.base_index
        )
        if present and in_base:
            status, reason = IN_BASE, f"in {p.base} already"
        else:
            status, reason = (PRESENT, why) if present else (ABSENT, why)
        items.append(Item(sha, subjects.get(sha, ""), status, reason, (why,)))
    return items


def gather(
    config: Config, store: Store, plans: list[Plan], clock: Callable[[], datetime]
) -> SiteData:
    pages = {st.sha for p in plans for st in p.steps}
    first_step: dict[str, Step] = {}
    for p in plans:
        for st in p.steps:
            first_step.setdefault(st.sha, st)
    subjects = {sha: st.subject for sha, st in first_step.items()}
    sims: dict[str, dict[str, dict[str, Any]]] = {}
    changes: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[Group]] = {}
    with store.session() as s:
        # Read in a few set-based queries per chunk of changes, never per change: a cron run
        # over a store of tens of thousands of changes would otherwise issue about 14 per change.
        records = q.commits(s, sorted(pages))
        # Oldest first, as the changes reached mainline.
        shas = sorted(pages, key=lambda sha: (_commit_time(records, sha), sha))
        views: dict[str, dict[str, dict[str, Any]]] = {}
        for p in plans:
            sims[p.branch] = q.simulations(s, p.branch)
            items = _branch_items(s, config.branch(p.branch), p, sims[p.branch], shas, subjects)
            groups[p.branch] = group(items)
            views[p.branch] = {
                it.sha: _item_view(p.branch, g.section.key, it, sims[p.branch], pages)
                for g in groups[p.branch]
                for it in g.items
            }
        topics = q.topics(s, shas)
        timelines = q.timelines(s, shas)
        graphs = q.neighbours_of(s, shas)
        for sha in shas:
            rec = records.get(sha)
            per_branch = [
                {
                    "branch": p.branch,
                    "page": f"{page_name('branch', p.branch)}.html",
                    **views[p.branch][sha],
                }
                for p in plans
            ]
            # A fix not yet upstream has no commit: its plan step carries subject and topics.
            step = first_step.get(sha)
            changes[sha] = {
                "sha": sha,
                "short": sha[:12] if rec else sha,
                "subject": rec.subject if rec else subjects.get(sha, ""),
                "author": rec.author if rec else "",
                "first_release": rec.first_release if rec else None,
                "message": rec.message if rec else None,
                "topics": topics.get(sha) or list(step.topics if step else ()),
                "branches": per_branch,
                "timeline": [e.to_dict() for e in timelines[sha]],
                "graph": graph_layout(graphs[sha], pages),
            }
        pending = [_pending_view(p) for p in pending_series(s)]
    return SiteData(
        title=config.dashboard.title,
        generated=clock().astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        plans=plans,
        sims=sims,
        changes=changes,
        pending=pending,
        groups=groups,
    )


def _commit_time(records: dict[str, q.CommitRecord], sha: str) -> int:
    rec = records.get(sha)
    return rec.commit_time if rec else 0


def _item_view(
    branch: str, key: str, it: Item, sims: dict[str, dict[str, Any]], pages: set[str]
) -> dict[str, Any]:
    """What a row shows of one item: the decision, its evidence and the stored simulation."""
    sim = sims.get(it.sha) if it.status in ACTIONABLE else None
    return {
        "sha": it.sha,
        "short": it.sha[:12],
        "subject": it.subject,
        "status": it.status,
        "reason": it.reason,
        "evidence": list(it.evidence),
        "position": it.position,
        "topics": list(it.topics),
        "stable_sha": it.stable_sha,
        "release": it.release,
        "page": f"{page_name('change', it.sha)}.html" if it.sha in pages else None,
        "actionable": it.status in ACTIONABLE,
        "simulation": sim,
        "sim": _simulation_view(sim),
        "section": key,
        "section_page": f"{section_page(branch, key)}.html",
    }


def _pending_view(p: PostingView) -> dict[str, Any]:
    latest = p.latest
    reviews = {(r.kind, r.who) for patch in latest.patches for r in patch.reviews}
    return {
        "subject": p.subject,
        "author": p.author,
        "version": latest.version,
        "versions": len(p.versions),
        "patches": len(latest.patches),
        "total": latest.total,
        "complete": latest.complete,
        "posted": _iso(latest.posted_at),
        "message_id": latest.root_message_id,
        "reviews": len(reviews),
        "cc_stable": sum(1 for patch in latest.patches if patch.cc_stable),
        "merged": len(p.commits),
        "lists": list(p.lists),
        "mm": [{"patch": f, "state": st} for f, st in p.mm],
    }


def _section_summary(branch: str, g: Group) -> dict[str, Any]:
    return {
        "key": g.section.key,
        "title": g.section.title,
        "about": g.section.about,
        "action": g.section.action,
        "n": len(g.items),
        "page": f"{section_page(branch, g.section.key)}.html",
    }


def index_page(data: SiteData, topics: Sequence[str]) -> dict[str, Any]:
    statuses: set[str] = {st.status for p in data.plans for st in p.steps}
    order = _status_order(statuses)
    changes = data.changes
    rows: list[dict[str, Any]] = []
    branches: list[dict[str, Any]] = []
    columns: dict[str, dict[str, Any]] = {}
    for p in data.plans:
        cells = []
        for t in topics:
            counts = Counter(st.status for st in p.steps if t in st.topics)
            cells.append(
                {"topic": t, "counts": [{"status": s, "n": counts[s]} for s in order if counts[s]]}
            )
        total = Counter(st.status for st in p.steps)
        page = f"{page_name('branch', p.branch)}.html"
        rows.append(
            {
                "branch": p.branch,
                "base": p.base,
                "page": page,
                "todo": sum(1 for st in p.steps if st.status in ACTIONABLE),
                "cells": cells,
                "total": [{"status": s, "n": total[s]} for s in order if total[s]],
            }
        )
        sections = []
        for g in data.groups[p.branch]:
            sec = _section_summary(p.branch, g)
            columns.setdefault(sec["key"], {k: sec[k] for k in ("key", "title", "action")})
            if g.section.action:
                # The change's own page view of this branch: the same row the section page shows.
                sec["top"] = [_branch_view(changes, it.sha, p.branch) for it in g.items[:TOP_ITEMS]]
            sections.append(sec)
        branches.append(
            {
                "branch": p.branch,
                "base": p.base,
                "page": page,
                "action": [sec for sec in sections if sec["action"]],
                "counted": [sec for sec in sections if not sec["action"]],
                "counts": {sec["key"]: sec for sec in sections},
            }
        )
    # The summary shows every action section, and only the counted ones some branch has.
    seen = {k for b in branches for k, sec in b["counts"].items() if sec["n"]}
    cols = [c for c in columns.values() if c["action"] or c["key"] in seen]
    return {
        "kind": "index",
        "title": data.title,
        "generated": data.generated,
        "topics": list(topics),
        "statuses": order,
        "columns": [c for c in cols if c["action"]] + [c for c in cols if not c["action"]],
        "branches": branches,
        "rows": rows,
        "pending": data.pending,
    }


def _branch_view(changes: dict[str, dict[str, Any]], sha: str, branch: str) -> dict[str, Any]:
    view = next(b for b in changes[sha]["branches"] if b["branch"] == branch)
    return {k: v for k, v in view.items() if k != "simulation"}


def section_pages(data: SiteData, p: Plan) -> list[tuple[str, dict[str, Any]]]:
    """(file name, page) for every page of every section of ``p``'s branch, empty ones too.

    Empty sections get their one page so that links to a section never break as it empties.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    groups = data.groups[p.branch]
    siblings = [_section_summary(p.branch, g) for g in groups]
    for g in groups:
        rows = [_branch_view(data.changes, it.sha, p.branch) for it in g.items]
        n_pages = _pages_of(len(rows))
        links = [
            {"n": i, "page": f"{section_page(p.branch, g.section.key, i)}.html"}
            for i in range(1, n_pages + 1)
        ]
        for i in range(1, n_pages + 1):
            chunk = rows[(i - 1) * PAGE_ROWS : i * PAGE_ROWS]
            name = section_page(p.branch, g.section.key, i)
            out.append(
                (
                    name,
                    {
                        "kind": "section",
                        "title": data.title,
                        "generated": data.generated,
                        "branch": p.branch,
                        "base": p.base,
                        "branch_page": f"{page_name('branch', p.branch)}.html",
                        "section": _section_summary(p.branch, g),
                        "sections": siblings,
                        "page_no": i,
                        "pages": links,
                        "first": (i - 1) * PAGE_ROWS + 1 if chunk else 0,
                        "last": (i - 1) * PAGE_ROWS + len(chunk),
                        "positions": any(r["position"] is not None for r in chunk),
                        "backports": any(r["stable_sha"] for r in chunk),
                        "rows": chunk,
                    },
                )
            )
    return out


def branch_page(data: SiteData, p: Plan) -> dict[str, Any]:
    pages = set(data.changes)
    sims = data.sims.get(p.branch, {})
    steps = [_step_view(st, sims.get(st.sha), pages) for st in p.steps]
    counts = Counter(st.status for st in p.steps)
    return {
        "kind": "branch",
        "title": data.title,
        "generated": data.generated,
        "branch": p.branch,
        "base": p.base,
        "counts": [{"status": s, "n": counts[s]} for s in _status_order(set(counts))],
        "sections": [_section_summary(p.branch, g) for g in data.groups[p.branch]],
        "ordered": [s for s in steps if s["position"] is not None],
        "simulated": sum(1 for s in steps if s["simulation"] is not None),
    }


def change_page(data: SiteData, sha: str) -> dict[str, Any]:
    return {"kind": "change", "title": data.title, "generated": data.generated, **data.changes[sha]}


# -- writing and swapping --------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardReport:
    out: Path
    pages: int
    changes: int
    branches: int


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_site(
    config: Config,
    store: Store,
    out: Path,
    plans: list[Plan],
    *,
    renderer: Renderer | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DashboardReport:
    """Render the whole site into a staging directory, then swap it in for ``out``.

    The caller holds the run lock (:func:`tracker.lock.run_lock`), so staging directories left
    by a killed earlier run can be removed here without racing a live one.
    """
    renderer = renderer or Renderer(config.templates_dir)
    out = out.expanduser().absolute()
    data = gather(config, store, plans, clock or (lambda: datetime.now(UTC)))
    topics = [t.name for t in config.topics]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    except OSError as exc:
        raise ConfigError(f"cannot create the dashboard beside {out}: {exc}") from None
    pages = 0
    try:
        common = {"version": __version__}

        def page(name: str, template: str, ctx: dict[str, Any]) -> None:
            nonlocal pages
            html = renderer.render(template, {**common, "name": name, "page": ctx})
            (staging / f"{name}.html").write_text(html, encoding="utf-8")
            (staging / f"{name}.json").write_text(_json(ctx), encoding="utf-8")
            pages += 1

        # The stable queue's page (tracker.report.queueview), when a queue source exists.
        queue = queue_page(config, store, set(data.changes))
        index = index_page(data, topics)
        index["queue_page"] = "queue.html" if queue else None
        page("index", "dashboard/index.html.j2", index)
        if queue:
            page(
                "queue",
                "dashboard/queue.html.j2",
                {"title": data.title, "generated": data.generated, **queue},
            )
        for p in data.plans:
            page(page_name("branch", p.branch), "dashboard/branch.html.j2", branch_page(data, p))
            for name, ctx in section_pages(data, p):
                page(name, "dashboard/section.html.j2", ctx)
        for sha in data.changes:
            page(page_name("change", sha), "dashboard/change.html.j2", change_page(data, sha))
        os.chmod(staging, 0o755)
        swap_in(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConfigError(
                f"cannot write the dashboard to {out} (previous one kept): {exc}"
            ) from None
        raise
    return DashboardReport(out, pages, len(data.changes), len(data.plans))


def _remove_stale(out: Path) -> None:
    for p in out.parent.glob(f".{out.name}.new-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in out.parent.glob(f".{out.name}.old-*"):
        shutil.rmtree(p, ignore_errors=True)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two directory entries (Linux renameat2); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_in(staging: Path, out: Path) -> None:
    """Make ``staging`` the new ``out``; readers see the old site or the new one, never a mix.

    With an existing ``out`` the two directories are exchanged in one ``renameat2`` call where
    the kernel and file system support it; elsewhere ``out`` is renamed aside and ``staging``
    renamed in (a moment without ``out``, never a half-written one).
    """
    if out.is_symlink() or out.is_file():
        raise ConfigError(f"dashboard target {out} exists and is not a directory")
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous site
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, old / "site")
    try:
        os.rename(staging, out)
    except OSError:
        with contextlib.suppress(OSError):
            os.rename(old / "site", out)
        raise
    shutil.rmtree(old, ignore_errors=True)
