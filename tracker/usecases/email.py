"""Use case ``email``: the mail context a command's options and the config make, and the four
kinds of stable mail built in it. Rendering and composing are :mod:`tracker.report.mails`'s; the
report modules (Jinja2, GitPython) are imported by the calls that use them, since every tracker
command loads this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tracker.config import Config
from tracker.store.db import open_store
from tracker.usecases.plans import plan

if TYPE_CHECKING:
    from tracker.report.email import OutgoingMail
    from tracker.report.mails import MailContext


def mail_context(cfg: Config, to: Sequence[str] | None, cc: Sequence[str] | None) -> MailContext:
    """The store, templates and mail settings of ``cfg``; ``to``/``cc`` replace [email]'s."""
    from tracker.report.email import MailSettings
    from tracker.report.mails import MailContext
    from tracker.report.render import Renderer

    return MailContext(
        config=cfg,
        store=open_store(cfg),
        renderer=Renderer(cfg.templates_dir),
        settings=MailSettings.from_config(cfg.email, to=to or (), cc=cc or ()),
    )


def review_series(
    ctx: MailContext, branch: str, release: str | None, *, source: str = "auto"
) -> list[OutgoingMail]:
    """A stable review series: cover letter and one mail per queued patch (or commit)."""
    from tracker.report import mails

    return mails.review_series(ctx, branch, release, source=source)


def failed_mail(
    ctx: MailContext, branch: str, sha: str, prerequisites: Sequence[str] = ()
) -> OutgoingMail:
    """A FAILED-to-apply mail with reproduce commands and the verified prerequisites."""
    from tracker.report import mails

    return mails.failed_mail(ctx, branch, sha, prerequisites)


def backport_mails(
    ctx: MailContext,
    branch: str,
    sha: str,
    prerequisites: Sequence[str] = (),
    in_reply_to: str | None = None,
) -> list[OutgoingMail]:
    """A backport submission: [PATCH 6.1.y] mails, prerequisites first."""
    from tracker.report import mails

    return mails.backport_mails(ctx, branch, sha, prerequisites, in_reply_to)


def digest_mails(ctx: MailContext, topic: str | None = None) -> list[OutgoingMail]:
    """One digest mail per topic over every branch's plan (deciding them stores their
    decisions, as a cron run should)."""
    from tracker.report import mails

    cfg = ctx.config
    if topic:
        cfg.topic(topic)  # an unknown topic fails before any plan is decided
    plans = [plan(cfg, ctx.store, b.name) for b in cfg.branches]
    return mails.digest_mails(ctx, plans, topic)
