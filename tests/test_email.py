"""Mail mechanics: header safety, wrapping, mbox escaping, threading, no sending, the CLI."""

from __future__ import annotations

import email
import email.policy
import smtplib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.conftest import Synced
from tracker.cli.reports import register
from tracker.config import EmailConfig
from tracker.errors import ConfigError
from tracker.report.email import (
    MailError,
    MailSettings,
    check_address,
    check_msgid,
    compose,
    mbox_bytes,
    safe_address,
    send_mails,
    thread,
    wrap_body,
    write_split,
)

WHEN = datetime(2026, 1, 28, 14, 53, 2, tzinfo=UTC)


def _mail(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sender": "Stable Bot <bot@example.org>",
        "to": ["stable@vger.kernel.org"],
        "subject": "[PATCH 6.1.y] mm: fix",
        "body": "hello\n",
        "message_id": "<1@example.org>",
        "date": WHEN,
    }
    base.update(kw)
    return base


def _headers(raw: bytes) -> list[str]:
    head = raw.split(b"\n\n", 1)[0].decode()
    return [line for line in head.split("\n") if not line.startswith((" ", "\t"))]


def test_subject_from_a_mail_cannot_inject_headers() -> None:
    m = compose(**_mail(subject="fix\r\nBcc: victim@example.com\nX-Evil: 1"))  # type: ignore[arg-type]
    names = [h.split(":", 1)[0] for h in _headers(m.as_bytes())]
    assert "Bcc" not in names and "X-Evil" not in names
    assert m.subject == "fix Bcc: victim@example.com X-Evil: 1"
    parsed = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None


@pytest.mark.parametrize(
    "bad",
    [
        "a@example.org\nBcc: victim@example.com",
        "a@example.org, b@example.org",
        "not an address",
        "<a@exa mple.org>",
        "",
    ],
)
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(MailError):
        check_address(bad)


def test_addresses_are_normalised_and_encoded() -> None:
    assert check_address("Jan Horne <jan@example.org>") == "Jan Horne <jan@example.org>"
    assert check_address('"Deacon, Will" <will@example.org>') == '"Deacon, Will" <will@example.org>'
    assert (
        check_address("Will J. Deacon <will@example.org>") == '"Will J. Deacon" <will@example.org>'
    )
    with pytest.raises(MailError):  # unquoted comma: two addresses, one of them broken
        check_address("Deacon, Will <will@example.org>")
    m = compose(**_mail(to=["Jürgen Groß <jurgen@example.org>"], subject="x86/xen: Groß"))  # type: ignore[arg-type]
    raw = m.as_bytes()
    head = raw.split(b"\n\n", 1)[0]
    assert head.isascii()  # RFC 2047 in headers, 8bit only in the body
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["To"]) == "Jürgen Groß <jurgen@example.org>"
    assert str(parsed["Subject"]) == "x86/xen: Groß"


def test_mail_derived_author_is_dropped_when_invalid() -> None:
    assert safe_address("Jan", "jan@example.org") == "Jan <jan@example.org>"
    assert safe_address("Jan", "jan@example.org>\r\nBcc: x@y.z") is None
    assert safe_address("Jan", None) is None


def test_message_ids() -> None:
    assert check_msgid("20240729.abc@host") == "<20240729.abc@host>"
    for bad in ("no-at-sign", "<a@b>\nX: y", "<a b@c>"):
        with pytest.raises(MailError):
            check_msgid(bad)


def test_wrap_prose_but_never_diffs_trailers_or_commands() -> None:
    long = "word " * 30
    cmd = "git send-email --to '<stable@vger.kernel.org>' --in-reply-to 'x@y' " + "a" * 40
    trailer = 'Fixes: 0123456789ab ("' + "very long subject " * 5 + '")'
    diff_line = "+" + "x" * 120
    text = "\n".join([long.strip(), cmd, trailer, "    " + long, "---", diff_line, long])
    out = wrap_body(text).split("\n")
    assert all(len(line) <= 72 for line in out[:3] if line.startswith("word"))
    assert cmd in out and trailer in out and "    " + long in out
    # Everything from the patch separator on is left alone, prose included.
    assert out[-3:] == ["---", diff_line, long]


def test_short_lines_and_the_review_marker_are_kept() -> None:
    marker = "6.12-stable review patch.  If anyone has any objections, please let me know."
    assert wrap_body(marker) == marker


def test_mboxrd_escapes_from_lines() -> None:
    m = compose(**_mail(body="From here on\n>From there\nok\n"))  # type: ignore[arg-type]
    data = mbox_bytes([m, m])
    assert data.startswith(b"From " + b"0" * 40 + b" Mon Sep 17 00:00:00 2001\n")
    assert b"\n>From here on\n>>From there\n" in data
    assert data.count(b"\nFrom " + b"0" * 40) == 1


def test_thread_shallow_like_git_send_email() -> None:
    ms = [compose(**_mail(message_id=f"<{i}@example.org>")) for i in range(3)]  # type: ignore[arg-type]
    t = thread(ms, in_reply_to="parent@example.org")
    assert t[0].in_reply_to == "<parent@example.org>"
    assert t[0].references == ("<parent@example.org>",)
    assert [m.in_reply_to for m in t[1:]] == ["<0@example.org>"] * 2
    assert t[2].references == ("<parent@example.org>", "<0@example.org>")


def test_split_dir_for_git_send_email(tmp_path: Path) -> None:
    ms = [compose(**_mail(subject=f"[PATCH 6.1.y {i}/2] mm: fix {i}")) for i in (1, 2)]  # type: ignore[arg-type]
    paths = write_split(ms, tmp_path / "out")
    assert [p.name for p in paths] == ["0000-mm-fix-1.patch", "0001-mm-fix-2.patch"]
    assert paths[0].read_bytes().startswith(b"From ")


def test_not_configured_never_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_smtp(*_a: object, **_k: object) -> None:
        raise AssertionError("tracker opened an SMTP connection without smtp_server")

    monkeypatch.setattr(smtplib, "SMTP", no_smtp)
    m = compose(**_mail())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no SMTP server configured"):
        send_mails(EmailConfig(), [m])


def test_settings_validate_config_addresses() -> None:
    with pytest.raises(MailError):
        MailSettings.from_config(EmailConfig(from_address="me@example.org\nBcc: x@y.z"))


# -- CLI (through register(); tracker.cli wires the same function) ---------------------------


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _main(config: Path | None = typer.Option(None, "--config", "-c")) -> None:
        pass

    register(app)
    return app


def test_cli_backport_to_file_and_failed_to_stdout(synced_ro: Synced, tmp_path: Path) -> None:
    s = synced_ro.world.shas
    cfg = str(synced_ro.config.path)
    runner = CliRunner()
    out = tmp_path / "bp.mbox"
    res = runner.invoke(
        _app(),
        [
            *("-c", cfg, "email", "backport", "linux-6.1.y", s["VM_FIX"][:12]),
            *("-p", s["VM_PREREQ"], "--out", str(out)),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "wrote 2 message(s)" in res.output
    assert out.read_bytes().count(b"\nSubject: [PATCH 6.1.y ") == 2
    res = runner.invoke(_app(), ["email", "failed", "linux-6.1.y", s["VM_FIX"], "-c", cfg])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"From {s['VM_FIX']} Mon Sep 17 00:00:00 2001\n")
    assert "Possible dependencies:" in res.stdout


def test_cli_send_without_smtp_is_refused(
    synced_ro: Synced, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_smtp(*_a: object, **_k: object) -> None:
        raise AssertionError("tracker opened an SMTP connection without smtp_server")

    monkeypatch.setattr(smtplib, "SMTP", no_smtp)
    res = CliRunner().invoke(
        _app(),
        ["-c", str(synced_ro.config.path), "email", "digest", "--topic", "hugetlb", "--send"],
    )
    assert isinstance(res.exception, ConfigError)
    assert res.exception.exit_code == 2
    assert "From " not in res.stdout


def test_cli_rejects_injected_recipient(synced_ro: Synced) -> None:
    res = CliRunner().invoke(
        _app(),
        ["-c", str(synced_ro.config.path), "email", "digest", "--to", "a@b.org\nBcc: x@y.org"],
    )
    assert isinstance(res.exception, MailError)
