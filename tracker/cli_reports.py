"""CLI for the reports: ``tracker email review|failed|backport|digest`` and ``tracker dashboard``.

cli.py calls :func:`register` to add these commands to its app, so errors raised here reach its
one error handler (one line on stderr and the exit code of the error class).

Mail is written as an mbox to ``--out FILE`` or stdout (``git am``, ``b4``, mutt read it), or one
file per message to ``--split-dir DIR`` (what ``git send-email DIR`` takes). tracker sends mail
itself only with ``--send``, and only when ``[email] smtp_server`` is configured.

Cron, every hour (the lock makes an overlapping run exit with code 8 instead of colliding)::

    17 * * * *  tracker sync --quiet && tracker dashboard --out /var/www/tracker
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tracker import service
from tracker.config import Config, load_config
from tracker.errors import ConfigError
from tracker.lock import run_lock

if TYPE_CHECKING:
    from tracker.report.email import OutgoingMail
    from tracker.report.mails import MailContext

# The report modules (Jinja2, GitPython, the dashboard) are imported by the commands that use
# them: every tracker command registers these, and importing them cost each one a tenth of a
# second.

CRON_LINE = "17 * * * *  tracker sync --quiet && tracker dashboard --out /var/www/tracker"

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (else $TRACKER_CONFIG, ./tracker.toml, XDG)."),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write the mbox here (default: stdout; '-' is stdout)."),
]
SplitOpt = Annotated[
    Path | None,
    typer.Option("--split-dir", help="Write one NNNN-subject.patch per message (git send-email)."),
]
ToOpt = Annotated[
    list[str] | None, typer.Option("--to", help="Recipient (repeatable); default: [email] to.")
]
CcOpt = Annotated[
    list[str] | None, typer.Option("--cc", help="Cc (repeatable); default: [email] cc.")
]
SendOpt = Annotated[
    bool,
    typer.Option("--send", help="Send via [email] smtp_server (STARTTLS); refused if unset."),
]
PrereqOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--prerequisite",
        "-p",
        help="A prerequisite sha (repeatable); default: those the simulator verified.",
    ),
]


def _config(ctx: typer.Context, local: Path | None) -> Config:
    # cli.py's top-level callback takes --config too; honour it when the command has none.
    root = ctx.find_root().params.get("config")
    return load_config(local or (root if isinstance(root, Path | str) else None))


def _context(cfg: Config, to: list[str] | None, cc: list[str] | None) -> MailContext:
    from tracker.report.email import MailSettings
    from tracker.report.mails import MailContext
    from tracker.report.render import Renderer

    return MailContext(
        config=cfg,
        store=service.open_store(cfg),
        renderer=Renderer(cfg.templates_dir),
        settings=MailSettings.from_config(cfg.email, to=to or (), cc=cc or ()),
    )


def _emit(
    cfg: Config,
    mails: list[OutgoingMail],
    out: Path | None,
    split_dir: Path | None,
    send: bool,
) -> None:
    from tracker.report.email import mbox_bytes, send_mails, write_mbox
    from tracker.report.email import write_split as write_split_dir

    if send:
        n = send_mails(cfg.email, mails)
        typer.echo(f"sent {n} message(s) via {cfg.email.smtp_server}")
        return
    if split_dir is not None:
        paths = write_split_dir(mails, split_dir)
        typer.echo(f"wrote {len(paths)} message(s) to {split_dir}/")
        return
    if out is None or str(out) == "-":
        sys.stdout.buffer.write(mbox_bytes(mails))
        sys.stdout.buffer.flush()
        return
    write_mbox(mails, out)
    typer.echo(f"wrote {len(mails)} message(s) to {out}")


def email_review(
    ctx: typer.Context,
    branch: Annotated[str, typer.Argument(help="Stable branch, e.g. linux-6.12.y.")],
    release: Annotated[
        str | None,
        typer.Option("--release", help="e.g. 6.12.25-rc1 (default: next after the last tag)."),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="queue: the stable-queue's series, in its order; branch: the commits after the "
            "latest release; auto: the queue when a stable-queue source has one for this branch.",
        ),
    ] = "auto",
    out: OutOpt = None,
    split_dir: SplitOpt = None,
    to: ToOpt = None,
    cc: CcOpt = None,
    send: SendOpt = False,
    config: ConfigOpt = None,
) -> None:
    """A stable review series: cover letter and one mail per queued patch (or unreleased commit)."""
    from tracker.report import mails as report_mails

    cfg = _config(ctx, config)
    _emit(
        cfg,
        report_mails.review_series(_context(cfg, to, cc), branch, release, source=source),
        out,
        split_dir,
        send,
    )


def email_failed(
    ctx: typer.Context,
    branch: Annotated[str, typer.Argument(help="Stable branch, e.g. linux-6.1.y.")],
    sha: Annotated[str, typer.Argument(help="The mainline commit that does not apply.")],
    prerequisite: PrereqOpt = None,
    out: OutOpt = None,
    to: ToOpt = None,
    cc: CcOpt = None,
    send: SendOpt = False,
    config: ConfigOpt = None,
) -> None:
    """A FAILED-to-apply mail with reproduce commands and the verified prerequisites."""
    from tracker.report import mails as report_mails

    cfg = _config(ctx, config)
    mail = report_mails.failed_mail(_context(cfg, to, cc), branch, sha, prerequisite or ())
    _emit(cfg, [mail], out, None, send)


def email_backport(
    ctx: typer.Context,
    branch: Annotated[str, typer.Argument(help="Stable branch, e.g. linux-6.1.y.")],
    sha: Annotated[str, typer.Argument(help="The mainline commit to submit.")],
    prerequisite: PrereqOpt = None,
    in_reply_to: Annotated[
        str | None,
        typer.Option("--in-reply-to", help="Message-ID to answer (default: its FAILED mail)."),
    ] = None,
    out: OutOpt = None,
    split_dir: SplitOpt = None,
    to: ToOpt = None,
    cc: CcOpt = None,
    send: SendOpt = False,
    config: ConfigOpt = None,
) -> None:
    """A backport submission: [PATCH 6.1.y] mails, prerequisites first with Stable-dep-of:."""
    from tracker.report import mails as report_mails

    cfg = _config(ctx, config)
    picked = report_mails.backport_mails(
        _context(cfg, to, cc), branch, sha, prerequisite or (), in_reply_to
    )
    _emit(cfg, picked, out, split_dir, send)


def email_digest(
    ctx: typer.Context,
    topic: Annotated[str | None, typer.Option("--topic", "-t", help="Only this topic.")] = None,
    out: OutOpt = None,
    to: ToOpt = None,
    cc: CcOpt = None,
    send: SendOpt = False,
    config: ConfigOpt = None,
) -> None:
    """One digest mail per topic: what each branch needs, in order (for cron)."""
    from tracker.report import mails as report_mails

    cfg = _config(ctx, config)
    # A digest is for the maintainer running tracker, not for the list: default To is [email] from.
    mctx = _context(cfg, to or [cfg.email.from_address], cc)
    _emit(cfg, report_mails.digest_mails(mctx, topic), out, None, send)


def dashboard(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Site directory (default: [dashboard] out)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Write the static dashboard (overview, sections, branches, changes; HTML and JSON).

    Holds the run lock; the new site replaces the old one only once it is complete.
    Cron: 17 * * * *  tracker sync --quiet && tracker dashboard --out /var/www/tracker
    """
    from tracker.report import dashboard as dashboard_writer

    cfg = _config(ctx, config)
    target = out or cfg.dashboard.out
    if target is None:
        raise ConfigError(
            "no output directory: pass --out DIR or set [dashboard] out",
            path=str(cfg.path) if cfg.path else None,
            key="dashboard.out",
        )
    with run_lock(cfg):
        rep = dashboard_writer.write_dashboard(cfg, service.open_store(cfg), target)
    typer.echo(
        f"dashboard: {rep.pages} pages ({rep.branches} branches, {rep.changes} changes) "
        f"in {rep.out}"
    )


def register(app: typer.Typer) -> None:
    """Add ``email`` (review, failed, backport, digest) and ``dashboard`` to ``app``."""
    email_app = typer.Typer(
        no_args_is_help=True,
        help="Write stable mails as an mbox (sent only with --send and [email] smtp_server).",
    )
    email_app.command("review")(email_review)
    email_app.command("failed")(email_failed)
    email_app.command("backport")(email_backport)
    email_app.command("digest")(email_digest)
    app.add_typer(email_app, name="email")
    app.command("dashboard")(dashboard)
