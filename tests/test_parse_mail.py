"""tracker.parse.mail over the real samples in tests/data/samples and hand-made edge cases."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tracker.errors import SourceError
from tracker.parse.mail import (
    SYNTHETIC_MSGID_DOMAIN,
    decode_bytes,
    normalize_msgid,
    parse_date,
    parse_mail,
    parse_mbox,
    parse_subject,
    split_mbox,
)

SAMPLES = Path(__file__).parent / "data" / "samples"
LORE = SAMPLES / "lore"

MBOX_COUNTS = {
    "linux-arch_hugetlb-pmd-sharing-mmu_gather_2025-12.mbox": 70,
    "linuxppc_FAILED-to-apply_samples.mbox": 28,
    "linuxppc_added-to-4.19-stable_samples.mbox": 19,
    "linuxppc_stable-review-patches_samples.mbox": 160,
    "sparclinux_fix-lazy-mmu-mode_2025-03.mbox": 28,
    "tip-commits_tlb-lazy-hugetlb_notifications.mbox": 102,
}


def _mbox(name: str) -> bytes:
    return (LORE / name).read_bytes()


@pytest.mark.parametrize("name,count", sorted(MBOX_COUNTS.items()))
def test_every_lore_mbox_splits_and_parses(name: str, count: int) -> None:
    mails = [parse_mail(raw) for raw in split_mbox(_mbox(name))]
    assert len(mails) == count
    assert all(not m.msgid_synthetic and "@" in m.msgid for m in mails)
    assert all(m.date is not None and m.date.tzinfo is not None for m in mails)
    assert len({m.msgid for m in mails}) == count


def test_mboxrd_from_lines_are_unescaped() -> None:
    mails = list(split_mbox(_mbox("linux-arch_hugetlb-pmd-sharing-mmu_gather_2025-12.mbox")))
    bodies = [parse_mail(m).body for m in mails]
    hits = [b for b in bodies if "\nFrom hugetlb code, we call huge_pmd_unshare_flush()" in b]
    assert len(hits) == 4
    assert not any(">From hugetlb code" in b for b in bodies)


def test_failed_mbox_embedded_from_line_unescaped() -> None:
    first = parse_mail(next(split_mbox(_mbox("linuxppc_FAILED-to-apply_samples.mbox"))))
    assert "\nFrom 5580e96dad5a439d561d9648ffcbccb739c2a120 Mon Sep 17 00:00:00 2001\n" in (
        first.body
    )
    assert first.msgid == "20240327121605.2832425-1-sashal@kernel.org"
    assert first.from_name == "Sasha Levin"
    assert first.from_email == "sashal@kernel.org"
    assert first.x_stable == "review"
    assert first.x_patchwork_hint == "ignore"
    assert first.list_id == "linuxppc-dev.lists.ozlabs.org"
    assert first.date == datetime(2024, 3, 27, 8, 16, 5, tzinfo=timezone(timedelta(hours=-4)))


def test_review_patch_eml_headers() -> None:
    mail = parse_mail(
        (
            SAMPLES / "stable-mail/PATCH_6.1_78-79_mm-vmalloc-leave-lazy-MMU-mode_2025-07-22.eml"
        ).read_bytes()
    )
    assert mail.msgid == "20250722134331.266895503@linuxfoundation.org"
    assert mail.in_reply_to == "20250722134328.384139905@linuxfoundation.org"
    assert mail.references == ("20250722134328.384139905@linuxfoundation.org",)
    assert mail.parent == "20250722134328.384139905@linuxfoundation.org"
    assert mail.user_agent == "quilt/0.68"
    assert mail.x_stable == "review"
    assert mail.list_id == "stable.vger.kernel.org"
    assert mail.subject == "[PATCH 6.1 78/79] mm/vmalloc: leave lazy MMU mode on PTE mapping error"
    assert "stable@vger.kernel.org" in mail.to
    assert "agordeev@linux.ibm.com" in mail.cc
    tags = mail.tags
    assert (tags.stable_branch, tags.index, tags.total) == ("6.1", 78, 79)
    assert tags.subject == "mm/vmalloc: leave lazy MMU mode on PTE mapping error"


def test_failed_eml_misdeclared_charset_and_headers() -> None:
    mail = parse_mail(
        (SAMPLES / "stable-mail/FAILED_59d9094df3d7_6.6-stable_2025-01-06.eml").read_bytes()
    )
    assert mail.msgid == "2025010620-lethargic-backspin-e75d@gregkh"
    assert mail.from_name is None and mail.from_email == "gregkh@linuxfoundation.org"
    assert mail.charset == "utf-8"  # declared ANSI_X3.4-1968
    assert mail.date == datetime(2025, 1, 6, 11, 7, 20, tzinfo=UTC)
    assert mail.tags.stable_branch is None


def test_folded_subject_is_unfolded() -> None:
    mails = [
        parse_mail(r) for r in split_mbox(_mbox("tip-commits_tlb-lazy-hugetlb_notifications.mbox"))
    ]
    folded = [
        m for m in mails if m.msgid == "172250973229.2215.8425940959520979454.tip-bot2@tip-bot2"
    ]
    assert (
        folded[0].subject
        == "[tip: x86/urgent] x86/mm: Fix pti_clone_pgtable() alignment assumption"
    )
    assert folded[0].tags.prefixes == ("tip:", "x86/urgent")


def test_series_tags_of_lore_threads() -> None:
    mails = [parse_mail(r) for r in split_mbox(_mbox("sparclinux_fix-lazy-mmu-mode_2025-03.mbox"))]
    patches = [(m.tags.version, m.tags.index, m.tags.total) for m in mails if not m.tags.is_reply]
    assert patches == [(1, i, 4) for i in range(5)] + [(2, i, 5) for i in range(6)]
    covers = [m for m in mails if m.tags.is_cover and not m.tags.is_reply]
    assert [c.tags.subject for c in covers] == ["Fix lazy mmu mode", "Fix lazy mmu mode"]
    replies = [m for m in mails if m.tags.is_reply]
    assert len(replies) == 17
    assert replies[0].tags.subject == "mm: Fix lazy mmu docs and usage"
    assert replies[0].in_reply_to == "20250302145555.3236789-2-ryan.roberts@arm.com"

    arch = [
        parse_mail(r)
        for r in split_mbox(_mbox("linux-arch_hugetlb-pmd-sharing-mmu_gather_2025-12.mbox"))
    ]
    versions = {(m.tags.version, m.tags.total) for m in arch if not m.tags.is_reply}
    assert versions == {(1, 4), (2, 4), (3, 3), (3, 4)}


@pytest.mark.parametrize(
    "subject,expected",
    [
        ("[PATCH v2 3/5] mm: foo", (("PATCH",), 2, 3, 5, None, False, "mm: foo")),
        ("[PATCH RFC v3 0/7] bar", (("PATCH", "RFC"), 3, 0, 7, None, False, "bar")),
        ("[PATCH 6.12 093/393] x: y", (("PATCH",), None, 93, 393, "6.12", False, "x: y")),
        (
            "[PATCH AUTOSEL 6.12 03/10] rust: z",
            (("PATCH", "AUTOSEL"), None, 3, 10, "6.12", False, "rust: z"),
        ),
        (
            "[PATCH 6.1.y] mm/vmalloc: w",
            (("PATCH",), None, None, None, "6.1", False, "mm/vmalloc: w"),
        ),
        (
            "Re: [PATCH 6.12 000/121] 6.12.11-rc2 review",
            (("PATCH",), None, 0, 121, "6.12", True, "6.12.11-rc2 review"),
        ),
        ("RE: Re: Fwd: [PATCH] a", (("PATCH",), None, None, None, None, True, "a")),
        ("[PATCH linux-5.15.y 1/2] b", (("PATCH",), None, 1, 2, "5.15", False, "b")),
        ("[PATCH 2.6.32 3/4] old", (("PATCH",), None, 3, 4, "2.6.32", False, "old")),
        ("[PATCH net-next,v4 2/9] c", (("PATCH", "net-next"), 4, 2, 9, None, False, "c")),
        ("plain subject", ((), None, None, None, None, False, "plain subject")),
        ("[unterminated tag", ((), None, None, None, None, False, "[unterminated tag")),
    ],
)
def test_parse_subject(subject: str, expected: tuple[object, ...]) -> None:
    t = parse_subject(subject)
    assert (t.prefixes, t.version, t.index, t.total, t.stable_branch, t.is_reply, t.subject) == (
        expected
    )


def test_subject_flags() -> None:
    assert parse_subject("[PATCH AUTOSEL 6.12 03/10] x").autosel
    assert parse_subject("[PATCH 6.1.y] x").branch_suffix_y
    assert parse_subject("[PATCH 6.12 093/393] x").counter_width == 3


def test_rfc2047_subject_and_from() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_Gro=C3=9F?= <JGross@Suse.com>\n"
        b"Subject: =?utf-8?b?W1BBVENIXSB4ODYveGVuOiDDpMO2w7w=?=\n"
        b"Message-ID: <abc@example.org>\n"
        b"Date: Mon, 3 Mar 2025 15:36:40 +0100\n\nbody\n"
    )
    mail = parse_mail(raw)
    assert mail.from_name == "Jürgen Groß"
    assert mail.from_email == "jgross@suse.com"
    assert mail.subject == "[PATCH] x86/xen: äöü"


def test_8bit_header_and_latin1_body() -> None:
    raw = (
        "From: J\u00fcrgen <j@example.org>\nSubject: caf\u00e9\nMessage-ID: <x@y>\n"
        "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
    ).encode() + "na\u00efve\n".encode("latin-1")
    mail = parse_mail(raw)
    assert mail.subject == "café"
    assert mail.from_name == "Jürgen"
    assert mail.body == "naïve\n"
    assert mail.charset == "iso8859-1"


def test_undecodable_body_is_replaced_not_raised() -> None:
    raw = b"Message-ID: <x@y>\nContent-Type: text/plain; charset=bogus-charset\n\n\xff\xfe ok\n"
    mail = parse_mail(raw)
    assert "ok" in mail.body and "\ufffd" in mail.body


def test_decode_bytes_prefers_valid_utf8() -> None:
    assert decode_bytes("é".encode(), "us-ascii") == ("é", "utf-8")
    assert decode_bytes(b"\xe9", "latin-1") == ("é", "iso8859-1")
    assert decode_bytes("é".encode("utf-16"), "utf-16")[0] == "é"


def test_base64_and_multipart_bodies() -> None:
    raw = (
        b"Message-ID: <m@x>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        b"aGVsbG8gd29ybGQK\n"
        b"--B\nContent-Type: text/x-patch\nContent-Disposition: attachment\n\n"
        b"diff --git a/x b/x\n"
        b"--B\nContent-Type: text/html\n\n<p>ignored</p>\n--B--\n"
    )
    mail = parse_mail(raw)
    assert mail.body.startswith("hello world\n")
    assert "diff --git a/x b/x" in mail.body
    assert "ignored" not in mail.body


def test_missing_message_id_gets_stable_synthetic_id() -> None:
    raw = b"From: a@b\nSubject: no id\n\nbody\n"
    one, two = parse_mail(raw), parse_mail(raw)
    assert one.msgid_synthetic
    assert one.msgid == two.msgid
    assert one.msgid.endswith("@" + SYNTHETIC_MSGID_DOMAIN)


def test_crlf_mail() -> None:
    raw = b"Message-ID: <c@r>\r\nSubject: [PATCH] crlf\r\n\r\nline1\r\nline2\r\n"
    mail = parse_mail(raw)
    assert mail.subject == "[PATCH] crlf"
    assert mail.body == "line1\nline2\n"


def test_body_too_large() -> None:
    raw = b"Message-ID: <big@x>\n\n" + b"x" * 2000
    with pytest.raises(SourceError, match="body too large"):
        parse_mail(raw, max_body_bytes=1000)
    assert parse_mail(raw, max_body_bytes=4000).body.startswith("xxx")


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (b"just some text without headers", "no header"),
    ],
)
def test_not_a_mail(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_mail(data)


def test_split_mbox_crlf_and_gzip() -> None:
    data = _mbox("sparclinux_fix-lazy-mmu-mode_2025-03.mbox")
    crlf = data.replace(b"\n", b"\r\n")
    plain = [parse_mail(m) for m in split_mbox(data)]
    via_crlf = [parse_mail(m) for m in split_mbox(crlf)]
    via_gzip = [parse_mail(m) for m in split_mbox(gzip.compress(data))]
    assert [m.msgid for m in via_crlf] == [m.msgid for m in plain]
    assert [m.body for m in via_crlf] == [m.body for m in plain]
    assert [m.msgid for m in via_gzip] == [m.msgid for m in plain]


def test_split_mbox_rejects_html_and_non_mbox() -> None:
    with pytest.raises(SourceError, match="expected an mbox, got HTML"):
        list(split_mbox(b"\n<!DOCTYPE html>\n<html><head><title>lore</title></head></html>"))
    with pytest.raises(SourceError, match="expected an mbox, got HTML"):
        list(split_mbox(b"<html><body>Too Many Requests</body></html>"))
    with pytest.raises(SourceError, match="no 'From ' separator"):
        list(split_mbox(b'{"error": "not found"}'))
    with pytest.raises(SourceError, match="corrupt gzip"):
        list(split_mbox(b"\x1f\x8b\x08\x00garbage"))
    assert list(split_mbox(b"")) == []


def test_split_mbox_mboxo_and_unescaped_prose() -> None:
    data = (
        b"From a@b Thu Jan  1 00:00:00 1970\nMessage-ID: <1@x>\n\n"
        b">From the start\nFrom prose that is not a separator\nstill body\n\n"
        b"From b@c Thu Jan  1 00:00:00 1970\nMessage-ID: <2@x>\n\n>>From quoted\n"
    )
    mails = [parse_mail(m) for m in split_mbox(data)]
    assert [m.msgid for m in mails] == ["1@x", "2@x"]
    assert mails[0].body.startswith("From the start\nFrom prose that is not a separator\n")
    assert mails[1].body == ">From quoted\n"


def test_parse_mbox_reports_bad_messages_inline() -> None:
    data = (
        b"From a Thu Jan  1 00:00:00 1970\nMessage-ID: <ok@x>\n\nfine\n"
        b"From b Thu Jan  1 00:00:00 1970\nMessage-ID: <big@x>\n\n" + b"y" * 5000 + b"\n"
    )
    out = list(parse_mbox(data, max_body_bytes=1000))
    assert out[0].msgid == "ok@x"  # type: ignore[union-attr]
    assert isinstance(out[1], SourceError)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("<abc@host>", "abc@host"),
        ("  <abc@host> (comment)", "abc@host"),
        ("abc@host", "abc@host"),
        ("<a@b> <c@d>", "a@b"),
        ("", None),
        ("<>", None),
        (None, None),
    ],
)
def test_normalize_msgid(value: str | None, expected: str | None) -> None:
    assert normalize_msgid(value) == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        ("Mon, 16 Dec 2019 13:40:26 -03:00", datetime(2019, 12, 16, 16, 40, 26, tzinfo=UTC)),
        ("Thu, 12 Dec 2019 14:34:46 ", datetime(2019, 12, 12, 14, 34, 46, tzinfo=UTC)),
        ("Fri Jun 6 06:56:52 PDT 2025", datetime(2025, 6, 6, 13, 56, 52, tzinfo=UTC)),
        ("Mon Jan  4 01:45:29 PM CET 2021", datetime(2021, 1, 4, 12, 45, 29, tzinfo=UTC)),
    ],
)
def test_parse_date_tolerant(value: str, expected: datetime) -> None:
    got = parse_date(value)
    assert got is not None and got == expected


@pytest.mark.parametrize("value", ["garbage", "Tue, 99 Feb 9999 99:99:99 -99:99", "", None])
def test_parse_date_bad_values(value: str | None) -> None:
    assert parse_date(value) is None
