"""The static dashboard: an overview, one page per branch, one page per change; each also JSON.

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

from tracker import __version__, service
from tracker.config import Config
from tracker.errors import ConfigError
from tracker.plan import ACTIONABLE, NEEDED, NOMINATED, Plan, Step
from tracker.report import queries as q
from tracker.report.queueview import queue_page
from tracker.report.render import Renderer
from tracker.store.db import Store
from tracker.store.postings import PostingView, pending_series

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


def gather(config: Config, store: Store, clock: Callable[[], datetime]) -> SiteData:
    # service.plan() also refreshes the stored decisions (BranchState), as a cron run should.
    plans = [service.plan(config, store, b.name) for b in config.branches]
    pages = {st.sha for p in plans for st in p.steps}
    sims: dict[str, dict[str, dict[str, Any]]] = {}
    changes: dict[str, dict[str, Any]] = {}
    with store.session() as s:
        for p in plans:
            sims[p.branch] = q.simulations(s, p.branch)
        # Oldest first, as the changes reached mainline.
        shas = sorted(pages, key=lambda sha: (q.commit_time(s, sha), sha))
        for sha in shas:
            rec = q.commit(s, sha)
            n = q.neighbours(s, sha)
            per_branch = []
            for p in plans:
                st = next((x for x in p.steps if x.sha == sha), None)
                per_branch.append(
                    {
                        "branch": p.branch,
                        "page": f"{page_name('branch', p.branch)}.html",
                        **(
                            _step_view(st, sims[p.branch].get(sha), pages)
                            if st
                            else {
                                "sha": sha,
                                "status": "in base",
                                "reason": f"in {p.base} already",
                                "position": None,
                                "stable_sha": None,
                                "release": None,
                                "simulation": None,
                                "sim": None,
                            }
                        ),
                    }
                )
            # A fix not yet upstream has no commit: its plan step carries subject and topics.
            step = next((x for pl in plans for x in pl.steps if x.sha == sha), None)
            changes[sha] = {
                "sha": sha,
                "short": sha[:12] if rec else sha,
                "subject": rec.subject if rec else (step.subject if step else ""),
                "author": rec.author if rec else "",
                "first_release": rec.first_release if rec else None,
                "message": rec.message if rec else None,
                "topics": sorted(q.topics_of(s, sha)) or list(step.topics if step else ()),
                "branches": per_branch,
                "timeline": [e.to_dict() for e in q.timeline(s, sha)],
                "graph": graph_layout(n, pages),
            }
        pending = [_pending_view(p) for p in pending_series(s)]
    return SiteData(
        title=config.dashboard.title,
        generated=clock().astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        plans=plans,
        sims=sims,
        changes=changes,
        pending=pending,
    )


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


def index_page(data: SiteData, topics: Sequence[str]) -> dict[str, Any]:
    statuses: set[str] = {st.status for p in data.plans for st in p.steps}
    order = _status_order(statuses)
    rows = []
    for p in data.plans:
        cells = []
        for t in topics:
            counts = Counter(st.status for st in p.steps if t in st.topics)
            cells.append(
                {"topic": t, "counts": [{"status": s, "n": counts[s]} for s in order if counts[s]]}
            )
        total = Counter(st.status for st in p.steps)
        rows.append(
            {
                "branch": p.branch,
                "base": p.base,
                "page": f"{page_name('branch', p.branch)}.html",
                "todo": sum(1 for st in p.steps if st.status in ACTIONABLE),
                "cells": cells,
                "total": [{"status": s, "n": total[s]} for s in order if total[s]],
            }
        )
    changes = [
        {
            "sha": c["sha"],
            "short": c["short"],
            "subject": c["subject"],
            "topics": c["topics"],
            "page": f"{page_name('change', c['sha'])}.html",
            "statuses": [{"branch": b["branch"], "status": b["status"]} for b in c["branches"]],
        }
        for c in data.changes.values()
    ]
    return {
        "kind": "index",
        "title": data.title,
        "generated": data.generated,
        "topics": list(topics),
        "statuses": order,
        "branches": [p.branch for p in data.plans],
        "rows": rows,
        "changes": changes,
        "pending": data.pending,
    }


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
        "ordered": [s for s in steps if s["position"] is not None],
        "other": [s for s in steps if s["position"] is None],
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


def write_dashboard(
    config: Config,
    store: Store,
    out: Path,
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
    data = gather(config, store, clock or (lambda: datetime.now(UTC)))
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
