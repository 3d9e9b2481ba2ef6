"""The four kinds of mail: stable review series, FAILED-to-apply, backport submission, digest.

Each builder gathers facts from the store (read-only, :mod:`tracker.report.queries`) and git
(:class:`tracker.gitio.GitRepo`), renders ``templates/email/<kind>.txt.j2`` and returns validated
:class:`~tracker.report.email.OutgoingMail` objects, threaded. Nothing is written or sent here.
"""

from __future__ import annotations

import email.utils
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tracker import __version__
from tracker.config import BranchConfig, Config
from tracker.decide import ACTIONABLE, Plan
from tracker.errors import UnknownCommitError
from tracker.gitio import GitRepo
from tracker.report import queries as q
from tracker.report.email import (
    MailError,
    MailSettings,
    OutgoingMail,
    address_email,
    address_name,
    compose,
    safe_address,
    split_subject,
    thread,
)
from tracker.report.render import Renderer
from tracker.store.db import Store
from tracker.store.lookup import find_commit

USER_AGENT = f"tracker/{__version__}"
_RELEASE = re.compile(r"^\d+(?:\.\d+)+-rc\d+$")
_UPSTREAM_LINE = re.compile(
    r"^(?:commit [0-9a-f]{40} upstream\.|\[ Upstream commit [0-9a-f]{40} \])\s*$", re.MULTILINE
)


@dataclass(frozen=True)
class MailContext:
    """What every builder needs: the config, the store, templates and the sending identity."""

    config: Config
    store: Store
    renderer: Renderer
    settings: MailSettings

    def repo(self, name: str) -> Path:
        return self.config.repositories[name].path

    @property
    def mainline_repo(self) -> Path:
        return self.repo(self.config.mainline.repository)

    def render(self, template: str, context: dict[str, Any]) -> tuple[str, str]:
        return split_subject(self.renderer.render(template, context), template)


def _body_of(message: str) -> str:
    """A commit message without its subject line (and the blank line after it)."""
    _, _, rest = message.partition("\n")
    return rest.strip("\n")


def _message(ctx: MailContext, rec: q.CommitRecord, repo: Path) -> str:
    return rec.message if rec.message is not None else GitRepo(repo).message(rec.sha)


def _git_date(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%a %b %-d %H:%M:%S %Y +0000")


def _counter(i: int, total: int) -> str:
    # "[PATCH 6.12 000/121]": the index is padded to the width of the total.
    return f"{i:0{len(str(total))}d}/{total}"


def _resolve(s: Session, query: str) -> q.CommitRecord:
    c = find_commit(s, query)
    rec = q.commit(s, c.sha)
    assert rec is not None
    if not rec.mainline:
        raise UnknownCommitError(
            f"{query} is not a mainline commit and names no upstream commit tracker knows"
        )
    return rec


# -- review series ---------------------------------------------------------------------------


def next_release(b: BranchConfig, latest_tag: str | None) -> str:
    """``6.12.25-rc1`` after ``v6.12.24``; ``6.12.1-rc1`` when the branch has no release yet."""
    if latest_tag:
        m = re.search(r"(\d+(?:\.\d+)+)$", latest_tag)
        if m:
            parts = m.group(1).split(".")
            if len(parts) >= 3:
                parts[-1] = str(int(parts[-1]) + 1)
                return ".".join(parts) + "-rc1"
    return f"{b.version}.1-rc1"


@dataclass(frozen=True)
class ReviewItem:
    """One patch of a review series, from a branch commit or a stable-queue file."""

    subject: str
    author: str
    upstream_sha: str | None
    message_body: str
    patch: str
    # The stable commit, or for a queue file its upstream commit (the mbox "From" line).
    commit: str | None


def review_series(
    ctx: MailContext, branch: str, release: str | None = None, *, source: str = "auto"
) -> list[OutgoingMail]:
    """Cover letter ``[PATCH 6.12 000/N] 6.12.X-rc1 review`` and one mail per patch.

    ``source`` says where the patches come from: ``branch`` (the commits after the latest
    release), ``queue`` (the stable-queue's ``series``, in its order) or ``auto`` (the queue
    when a stable-queue source maps this branch and holds queued patches, else the branch)."""
    b = ctx.config.branch(branch)
    if source not in ("auto", "queue", "branch"):
        raise MailError(f"--from: expected auto, queue or branch, got {source!r}")
    if source != "branch":
        from tracker.report.queuemail import queue_review_items

        found = queue_review_items(ctx, b, required=source == "queue")
        if found is not None:
            items, diffstat, latest = found
            return _review_thread(ctx, b, release or next_release(b, latest), items, diffstat)
    repo = ctx.repo(b.repository)
    with ctx.store.session() as s:
        commits = q.unreleased_commits(s, b.name)
        if not commits:
            raise UnknownCommitError(
                f"{b.name} has no commits after its latest release: nothing to review"
            )
        latest = q.latest_stable_tag(s, b.name)
        start = q.tag_sha(s, latest or b.base)
        upstream = {c.sha: q.commit(s, c.upstream_sha) if c.upstream_sha else None for c in commits}
    items = []
    for c in commits:
        up = upstream[c.sha]
        items.append(
            ReviewItem(
                subject=c.subject,
                author=(up or c).author,
                upstream_sha=up.sha if up else None,
                message_body=_UPSTREAM_LINE.sub("", _body_of(_message(ctx, c, repo))).strip("\n"),
                patch=GitRepo(repo).commit_patch(c.sha),
                commit=c.sha,
            )
        )
    diffstat = GitRepo(repo).diffstat(start, commits[-1].sha) if start else ""
    return _review_thread(ctx, b, release or next_release(b, latest), items, diffstat)


def _review_thread(
    ctx: MailContext,
    b: BranchConfig,
    release: str,
    items: Sequence[ReviewItem],
    diffstat: str,
) -> list[OutgoingMail]:
    if not _RELEASE.match(release):
        raise MailError(f"--release: expected something like 6.12.25-rc1, got {release!r}")
    final = release.rsplit("-rc", 1)[0]
    total = len(items)
    dates = ctx.settings.dates(total + 1)
    new_id = ctx.settings.ids()
    ids = [new_id() for _ in range(total + 1)]
    sender = ctx.settings.sender
    common = {
        "version": b.version,
        "major": b.version.split(".")[0],
        "branch": b.name,
        "release": release,
        "final": final,
        "total": total,
        "maintainer": sender,
        "maintainer_name": address_name(sender),
    }
    headers = [("X-stable", "review"), ("X-Patchwork-Hint", "ignore"), ("User-Agent", USER_AGENT)]
    patches: list[OutgoingMail] = []
    shortlog: list[dict[str, str]] = []
    for i, it in enumerate(items, start=1):
        shortlog.append({"author": it.author, "subject": it.subject})
        subject, text = ctx.render(
            "email/review_patch.txt.j2",
            {
                **common,
                "counter": _counter(i, total),
                "subject": it.subject,
                "author": it.author,
                "upstream_sha": it.upstream_sha,
                "stable_sha": it.commit,
                "message_body": it.message_body,
                "patch": it.patch,
            },
        )
        patches.append(
            compose(
                sender=sender,
                to=ctx.settings.to,
                cc=ctx.settings.cc,
                subject=subject,
                body=text,
                message_id=ids[i],
                date=dates[i],
                headers=headers,
                commit=it.commit,
            )
        )
    subject, text = ctx.render(
        "email/review_cover.txt.j2",
        {
            **common,
            "counter": _counter(0, total),
            "responses_by": email.utils.format_datetime(dates[0] + timedelta(days=2)),
            "shortlog": shortlog,
            "diffstat": diffstat,
        },
    )
    cover = compose(
        sender=sender,
        to=ctx.settings.to,
        cc=ctx.settings.cc,
        subject=subject,
        body=text,
        message_id=ids[0],
        date=dates[0],
        headers=headers,
    )
    return thread([cover, *patches])


# -- FAILED ----------------------------------------------------------------------------------


def _prerequisites(
    s: Session, b: BranchConfig, fix: q.CommitRecord, given: Sequence[str]
) -> list[q.CommitRecord]:
    """Prerequisites named on the command line, else those the simulator verified and stored."""
    if given:
        recs = [_resolve(s, g) for g in given]
    else:
        recs = [
            r for sha in q.simulated_prerequisites(s, b.name, fix.sha) if (r := q.commit(s, sha))
        ]
    seen = {fix.sha}
    out: list[q.CommitRecord] = []
    for r in recs:
        if r.sha not in seen:
            seen.add(r.sha)
            out.append(r)
    return out


def failed_mail(
    ctx: MailContext, branch: str, sha: str, prerequisites: Sequence[str] = ()
) -> OutgoingMail:
    """``FAILED: patch "[PATCH] ..." failed to apply to 6.12-stable tree`` with a reproduce
    block and the verified prerequisites as "Possible dependencies"."""
    b = ctx.config.branch(branch)
    with ctx.store.session() as s:
        fix = _resolve(s, sha)
        pre = _prerequisites(s, b, fix, prerequisites)
    repo = ctx.mainline_repo
    mid = ctx.settings.ids()()
    sender = ctx.settings.sender
    stable_list = ctx.settings.to[0] if ctx.settings.to else sender
    deps = [{"sha": r.sha, "subject": r.subject} for r in ([fix, *pre] if pre else [])]
    subject, text = ctx.render(
        "email/failed.txt.j2",
        {
            "version": b.version,
            "branch": b.name,
            "sha": fix.sha,
            "subject": fix.subject,
            "stable_list": address_email(stable_list),
            "message_id": mid.strip("<>"),
            "dependencies": deps,
            "maintainer": sender,
            "maintainer_name": address_name(sender),
            "original": {
                "sha": fix.sha,
                "author": fix.author,
                "date": _git_date(fix.author_time),
                "message": _message(ctx, fix, repo),
                "patch": GitRepo(repo).commit_patch(fix.sha),
            },
        },
    )
    author = safe_address(fix.author_name, fix.author_email)
    return compose(
        sender=sender,
        to=[author] if author else ctx.settings.to,
        cc=[*ctx.settings.to, *ctx.settings.cc],
        subject=subject,
        body=text,
        message_id=mid,
        date=ctx.settings.dates(1)[0],
        commit=fix.sha,
    )


# -- backport submission ---------------------------------------------------------------------


def backport_mails(
    ctx: MailContext,
    branch: str,
    sha: str,
    prerequisites: Sequence[str] = (),
    in_reply_to: str | None = None,
) -> list[OutgoingMail]:
    """``[PATCH 6.12.y] subject`` (prerequisites first, each with ``Stable-dep-of:``), replying
    to the FAILED mail when one is known."""
    b = ctx.config.branch(branch)
    with ctx.store.session() as s:
        fix = _resolve(s, sha)
        pre = _prerequisites(s, b, fix, prerequisites)
        parent = in_reply_to or q.failed_mail_id(s, fix.sha, b)
    repo = ctx.mainline_repo
    series = [*pre, fix]
    total = len(series)
    dates = ctx.settings.dates(total)
    new_id = ctx.settings.ids()
    sender = ctx.settings.sender
    sender_email = address_email(sender)
    mails: list[OutgoingMail] = []
    for i, rec in enumerate(series, start=1):
        message = _message(ctx, rec, repo)
        dep_of = [] if rec.sha == fix.sha else [{"sha": fix.sha, "subject": fix.subject}]
        subject, text = ctx.render(
            "email/backport.txt.j2",
            {
                "version": b.version,
                "branch": b.name,
                "prefix": f"PATCH {b.version}.y",
                "counter": _counter(i, total) if total > 1 else "",
                "subject": rec.subject,
                "author": rec.author,
                "in_body_from": rec.author_email.lower() != sender_email,
                "upstream_sha": rec.sha,
                "message_body": _body_of(message),
                "stable_dep_of": dep_of,
                "signed_off": f"Signed-off-by: {sender}" not in message,
                "maintainer": sender,
                "patch": GitRepo(repo).commit_patch(rec.sha),
            },
        )
        author = safe_address(rec.author_name, rec.author_email)
        mails.append(
            compose(
                sender=sender,
                to=ctx.settings.to,
                cc=[*ctx.settings.cc, *([author] if author else [])],
                subject=subject,
                body=text,
                message_id=new_id(),
                date=dates[i - 1],
                commit=rec.sha,
            )
        )
    return thread(mails, in_reply_to=parent)


# -- digest ----------------------------------------------------------------------------------


def _steps(p: Plan, topic: str) -> list[dict[str, Any]]:
    return [{**st.to_dict(), "short": st.sha[:12]} for st in p.steps if topic in st.topics]


def digest_mails(
    ctx: MailContext, plans: Sequence[Plan], topic: str | None = None
) -> list[OutgoingMail]:
    """One mail per topic: for each branch of ``plans``, what to backport in order and what
    changed state."""
    cfg = ctx.config
    topics = [cfg.topic(topic).name] if topic else [t.name for t in cfg.topics]
    new_id = ctx.settings.ids()
    dates = ctx.settings.dates(len(topics))
    sender = ctx.settings.sender
    mails: list[OutgoingMail] = []
    for n, t in enumerate(topics):
        branches = []
        todo_total = 0
        for p in plans:
            steps = _steps(p, t)
            todo = [st for st in steps if st["status"] in ACTIONABLE]
            todo_total += len(todo)
            branches.append(
                {
                    "name": p.branch,
                    "base": p.base,
                    "todo": todo,
                    "other": [st for st in steps if st["status"] not in ACTIONABLE],
                    "counts": dict(sorted(Counter(st["status"] for st in steps).items())),
                }
            )
        subject, text = ctx.render(
            "email/digest.txt.j2",
            {
                "topic": t,
                "todo_total": todo_total,
                "branches": branches,
                "generated": email.utils.format_datetime(dates[n]),
                "maintainer": sender,
            },
        )
        mails.append(
            compose(
                sender=sender,
                to=ctx.settings.to,
                cc=ctx.settings.cc,
                subject=subject,
                body=text,
                message_id=new_id(),
                date=dates[n],
                headers=[("User-Agent", USER_AGENT)],
            )
        )
    return mails
