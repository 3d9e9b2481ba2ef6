"""Hostile and damaged mail (issue 11): nothing in a display name or a broken Message-ID may
stand in for a real identity, and a cut-off mail is an error on its document, not a posting."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import select

from tracker import usecases
from tracker.config import parse_config
from tracker.errors import SourceError
from tracker.ingest.mailparse import analyse
from tracker.parse.mail import normalize_msgid, parse_from, parse_mail, parse_msgid, split_mbox
from tracker.store.models import Document, Message

LORE = Path(__file__).parent / "data" / "samples" / "lore"
GREG = '"Greg KH <gregkh@linuxfoundation.org>"'


def _mail(headers: str, body: str = "body\n") -> bytes:
    base = "Message-ID: <m1@example.org>\nSubject: s\nDate: Mon, 3 Mar 2025 15:36:40 +0100\n"
    return (base + headers + "\n" + body).encode()


def _patch_mail() -> bytes:
    """A real posting: "[PATCH v1 1/4] mm: Fix lazy mmu docs and usage" from sparclinux."""
    mbox = (LORE / "sparclinux_fix-lazy-mmu-mode_2025-03.mbox").read_bytes()
    for raw in split_mbox(mbox):
        mail = parse_mail(raw)
        if mail.tags.index == 1 and mail.tags.total == 4 and not mail.tags.is_reply:
            return raw
    raise AssertionError("sample thread lost its v1 1/4")


@pytest.mark.parametrize(
    "from_field",
    [
        # The display name arrives encoded; decoded first, it would read as gregkh's address.
        "=?utf-8?b?" + base64.b64encode(GREG.encode()).decode() + "?= <attacker@evil.example>",
        "=?utf-8?q?=22Greg_KH_=3Cgregkh=40linuxfoundation=2Eorg=3E=22?= <attacker@evil.example>",
        f"{GREG} <attacker@evil.example>",
    ],
)
def test_display_name_never_becomes_the_address(from_field: str) -> None:
    mail = parse_mail(_mail(f"From: {from_field}\n"))
    assert mail.from_email == "attacker@evil.example"
    assert mail.from_name == "Greg KH <gregkh@linuxfoundation.org>"


def test_encoded_words_add_no_recipients() -> None:
    # A real broken To: from the sparclinux archive: the encoded word is not an address list.
    to = "=?utf-8?q?Thomas_Wei=C3=9Fschuh_=3Cthomas=2Eweissschuh=40linutronix=2Ede=3E?="
    cc = "=?utf-8?b?" + base64.b64encode(b"x <stable@vger.kernel.org>").decode() + "?="
    mail = parse_mail(_mail(f"From: a@b.example\nTo: {to}@codeaurora.org\nCc: {cc}\n"))
    assert "thomas.weissschuh@linutronix.de" not in mail.to
    assert mail.cc == ()
    assert not mail.addressed_to("stable@vger.kernel.org")


def test_plain_and_encoded_names_still_decode() -> None:
    assert parse_from('=?UTF-8?Q? "Mi=C5=82osz_Nowak" ?= <milosz.nowak@hddive.pl>') == (
        "Miłosz Nowak",
        "milosz.nowak@hddive.pl",
    )
    assert parse_from("gregkh@linuxfoundation.org (Greg KH)") == (
        "Greg KH",
        "gregkh@linuxfoundation.org",
    )


def test_hostile_message_id_is_rejected_not_truncated() -> None:
    hostile = '<"><script>x</script>@h.example>'
    with pytest.raises(SourceError, match="malformed Message-ID"):
        parse_msgid(hostile)
    raw = _mail("From: a@b.example\n").replace(b"<m1@example.org>", hostile.encode())
    with pytest.raises(SourceError, match="malformed Message-ID"):
        parse_mail(raw)
    # Fields that only point at other mails drop it rather than keep a fragment.
    assert normalize_msgid(hostile) is None
    reply = parse_mail(_mail(f"From: a@b.example\nIn-Reply-To: {hostile}\nReferences: {hostile}\n"))
    assert reply.in_reply_to is None and reply.references == ()


def test_odd_but_whole_message_ids_are_kept_whole() -> None:
    assert parse_msgid("<abc@host> (added by postmaster)") == "abc@host"
    with pytest.raises(SourceError):  # whitespace inside: not one token, so not kept in part
        parse_msgid('<"quoted local"@host>')
    assert parse_msgid('<"q"@host>') == '"q"@host'
    assert parse_msgid("bare-id@host") == "bare-id@host"
    assert parse_msgid("") is None


def test_mail_cut_inside_its_headers_is_an_error() -> None:
    raw = _patch_mail()
    cut = raw[: raw.index(b"Subject:") + 12]  # mid-Subject, before Message-ID and the body
    with pytest.raises(SourceError, match="truncated in its headers"):
        parse_mail(cut)
    # A complete header section with an empty body is not a truncation.
    assert parse_mail(_mail("From: a@b.example\n", "")).body == ""


def test_posting_cut_inside_its_diff_is_an_error() -> None:
    raw = _patch_mail()
    whole = analyse(raw)
    assert whole.mail is not None and whole.patch_id
    hunk = raw.index(b"\n@@ ")
    cut = raw[: raw.index(b"\n", raw.index(b"\n", hunk + 5) + 1) + 1]  # two lines into a hunk
    broken = analyse(cut)
    assert broken.mail is None
    assert broken.error is not None and "hunk" in broken.error


def test_reply_with_a_sketch_diff_is_kept_without_patch_id() -> None:
    body = "Something like:\n\n--- a/x.c\n+++ b/x.c\n@@ -1,5 +1,5 @@\n-a\n+b\n"
    a = analyse(
        _mail("From: a@b.example\nIn-Reply-To: <p@x>\n", body).replace(b"s\n", b"Re: s\n", 1)
    )
    assert a.mail is not None and a.mail.tags.is_reply
    assert a.patch_id is None


def test_damaged_mails_are_document_errors_not_postings(tmp_path: Path) -> None:
    mails = tmp_path / "mails"
    mails.mkdir()
    raw = _patch_mail()
    hunk = raw.index(b"\n@@ ")
    (mails / "1-cut-in-diff.eml").write_bytes(raw[: raw.index(b"\n", hunk + 5) + 1])
    (mails / "2-cut-in-headers.eml").write_bytes(raw[: raw.index(b"Subject:") + 12])
    (mails / "3-hostile-id.eml").write_bytes(
        _mail("From: a@b.example\n").replace(b"<m1@example.org>", b'<"><script>x</script>@h>')
    )
    (mails / "4-spoofed-from.eml").write_bytes(
        _mail(f"From: {GREG} <attacker@evil.example>\n").replace(b"m1@", b"m4@")
    )
    cfg = parse_config(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'tracker.db'}"},
            "repositories": [{"name": "linux", "path": str(tmp_path)}],
            "sources": [{"name": "mails", "kind": "maildir", "path": str(mails)}],
        },
        None,
    )
    store = usecases.open_store(cfg)
    (report,) = usecases.sync_sources(cfg, store)
    assert len(report.counts.errors) == 3
    with store.session() as s:
        errors = {d.key.rsplit("/", 1)[1]: d.error for d in s.scalars(select(Document))}
        stored = {m.message_id: m.from_email for m in s.scalars(select(Message))}
    assert errors["1-cut-in-diff.eml"] is not None and "hunk" in errors["1-cut-in-diff.eml"]
    assert "truncated in its headers" in (errors["2-cut-in-headers.eml"] or "")
    assert "malformed Message-ID" in (errors["3-hostile-id.eml"] or "")
    assert errors["4-spoofed-from.eml"] is None
    assert stored == {"m4@example.org": "attacker@evil.example"}
    store.close()
