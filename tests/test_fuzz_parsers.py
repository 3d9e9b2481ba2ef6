"""Every parser is total: on any input it returns a result or raises SourceError, nothing else.

Inputs are built from pieces of real mails (headers, stable preambles, diffs, trailers with
option-like values) mixed with garbage, truncation, odd charsets and oversized bodies.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.errors import SourceError
from tracker.ingest.archive import parse_archive_text
from tracker.ingest.atom import parse_feed
from tracker.ingest.mmcommits import parse_mm_commits, parse_mm_commits_text, parse_tip_commit
from tracker.ingest.stablemail import parse_stable_mail
from tracker.parse.mail import parse_mail, parse_subject, split_mbox
from tracker.parse.patch import extract_diff, parse_diff, patch_ids, split_message

SAMPLES = Path(__file__).parent / "data" / "samples"
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADER_LINES = [
    b"Message-ID: <a@b>",
    b"Message-ID: <>",
    b"Message-ID:",
    b"Subject: [PATCH 6.12 093/393] x",
    b"Subject: [PATCH AUTOSEL 6.12 03/10] y",
    b'Subject: FAILED: patch "[PATCH] z" failed to apply to 6.6-stable tree',
    b'Subject: Patch "z" has been added to the 6.12-stable tree',
    b"Subject: Re: [PATCH 6.12 000/121] 6.12.11-rc2 review",
    b"Subject: + x.patch added to mm-unstable branch",
    b"Subject: [merged mm-stable] x.patch removed from -mm tree",
    b"Subject: [tip: x86/mm] x",
    b"Subject: =?utf-8?b?invalid!!?=",
    b"Subject: =?bogus-charset?q?x?=",
    b"Subject: \xff\xfe\x80",
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@x>",
    b"From: <<<>>>",
    b"Date: Tue, 99 Feb 9999 99:99:99 -99:99",
    b"Date: Mon, 16 Dec 2019 13:40:26 -03:00",
    b"In-Reply-To: <<x@y>",
    b"References: <a@b> <c@d",
    b"X-stable-base: Linux 6.12.32",
    b"X-stable: review",
    b"User-Agent: quilt/0.68",
    b"Content-Type: text/plain; charset=utf-16",
    b"Content-Type: text/plain; charset=x-unknown",
    b"Content-Type: text/plain; charset=iso-2022-jp",
    b'Content-Type: multipart/mixed; boundary="B"',
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"To: stable@vger.kernel.org",
]

BODY_LINES = [
    b"Fixes: --upload-pack=x",
    b'Fixes: -c core.sshCommand=touch ("x")',
    b"Fixes: ",
    b"Stable-dep-of: --exec=x",
    b"commit 0123456789abcdef0123456789abcdef01234567 upstream.",
    b"[ Upstream commit 0123456789abcdef0123456789abcdef01234567 ]",
    b"From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001",
    b">From foo@bar Mon Jan  1 00:00:00 2001",
    b"From foo@bar Mon Jan  1 00:00:00 2001",
    b"commit 0123456789abcdef0123456789abcdef01234567",
    b"Author: A <a@b>",
    b"Possible dependencies:",
    b'0123456789ab ("x")',
    b"git cherry-pick -x 0123456789abcdef0123456789abcdef01234567",
    b"git send-email --in-reply-to '' --subject-prefix 'x'",
    b"------------------ original commit in Linus's tree ------------------",
    b"------------------------------------------------------",
    b"The patch titled",
    b"     Subject: x",
    b"has been added to the -mm mm-new branch.  Its filename is",
    b"This patch was dropped because",
    b"The filename of the patch is:",
    b"and it can be found in the queue-6.12 subdirectory.",
    b"6.12-stable review patch.  If anyone has any objections, please let me know.",
    b"Commit-ID:     0123456789abcdef0123456789abcdef01234567",
    b"Tested-by: A <a@b>",
    b"Please drop this patch",
    b"Now dropped",
    b"> quoted",
    b"diff --git a/x b/x",
    b"diff --git a/x",
    b"index 123..456 100644",
    b"new file mode 100644",
    b"rename from a",
    b"GIT binary patch",
    b"literal 5",
    b"--- a/x~name",
    b"+++ a/x",
    b"--- /dev/null",
    b"+++ b/x",
    b"@@ -1,3 +1,4 @@",
    b"@@ -99999999999999999999,1 +1,-5 @@",
    b"@@ -",
    b" context",
    b"-removed",
    b"+added",
    b"\\ No newline at end of file",
    b"_",
    b"-- ",
    b"",
    b"\x00\xff\xfe",
    b"\r",
]


def _lines(pool: list[bytes]) -> st.SearchStrategy[bytes]:
    piece = st.one_of(st.sampled_from(pool), st.binary(max_size=40))
    return st.lists(piece, max_size=40).map(lambda xs: b"\n".join(xs))


MAILS = st.builds(
    lambda h, b, sep: h + sep + b,
    _lines(HEADER_LINES),
    _lines(BODY_LINES),
    st.sampled_from([b"\n\n", b"\r\n\r\n", b"\n", b""]),
)


def _truncations(path: Path) -> st.SearchStrategy[bytes]:
    data = path.read_bytes()
    return st.integers(min_value=0, max_value=len(data)).map(lambda n: data[:n])


SAMPLE_MAILS = st.one_of(
    _truncations(SAMPLES / "stable-mail/FAILED_59d9094df3d7_6.6-stable_2025-01-06.eml"),
    _truncations(
        SAMPLES / "stable-mail/PATCH_6.1_78-79_mm-vmalloc-leave-lazy-MMU-mode_2025-07-22.eml"
    ),
    _truncations(SAMPLES / "stable-queue/releases/6.6.88/mm-fix-lazy-mmu-docs-and-usage.patch"),
)


def run_mail_parsers(data: bytes) -> None:
    try:
        mail = parse_mail(data, max_body_bytes=64 * 1024)
    except SourceError:
        return
    parse_subject(mail.subject)
    parse_stable_mail(mail)
    parse_mm_commits(mail)
    parse_tip_commit(mail)
    split_message(mail.body)
    extract_diff(mail.body)
    parse_diff(mail.body)
    patch_ids(mail.body)


def must_be_total(fn: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(SourceError):
        fn(*args)


@FUZZ
@given(MAILS)
def test_mail_pipeline_on_synthetic_mails(data: bytes) -> None:
    run_mail_parsers(data)


@FUZZ
@given(st.one_of(SAMPLE_MAILS, st.binary(max_size=2000)))
def test_mail_pipeline_on_truncated_samples_and_garbage(data: bytes) -> None:
    run_mail_parsers(data)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["utf-16", "cp1252", "koi8-r", "x-bogus", "utf-8"]))
def test_any_charset(payload: bytes, charset: str) -> None:
    head = f"Message-ID: <c@x>\nContent-Type: text/plain; charset={charset}\n\n".encode()
    mail = parse_mail(head + payload)
    assert isinstance(mail.body, str)


@FUZZ
@given(st.integers(min_value=0, max_value=3000))
def test_huge_bodies_are_rejected_cleanly(size: int) -> None:
    data = b"Message-ID: <h@x>\nSubject: big\n\n" + b"a" * size
    try:
        mail = parse_mail(data, max_body_bytes=1000)
    except SourceError as exc:
        assert "body too large" in str(exc)
        assert size > 1000
    else:
        assert len(mail.body) <= 1000


@FUZZ
@given(
    st.lists(st.one_of(MAILS, st.binary(max_size=100)), max_size=6), st.booleans(), st.booleans()
)
def test_split_mbox_is_total(parts: list[bytes], crlf: bool, gz: bool) -> None:
    data = b"".join(b"From x Thu Jan  1 00:00:00 1970\n" + p + b"\n" for p in parts)
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    if gz:
        data = gzip.compress(data)
    try:
        for raw in split_mbox(data):
            run_mail_parsers(raw)
    except SourceError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_split_mbox_garbage(data: bytes) -> None:
    must_be_total(lambda d: list(split_mbox(d)), data)


FEED_PIECES = [
    b"<feed xmlns='http://www.w3.org/2005/Atom'>",
    b"</feed>",
    b"<entry>",
    b"</entry>",
    b"<id>urn:sha1:0123456789abcdef0123456789abcdef01234567</id>",
    b"<id>0123456789abcdef0123456789abcdef01234567</id>",
    b"<id>urn:uuid:x</id>",
    b"<link href='https://lore.kernel.org/x/a%40b/'/>",
    b"<link href='%%%'/>",
    b"<title>t &amp; &nbsp; &bogus;</title>",
    b"<updated>not a date</updated>",
    b"<updated>2025-01-01T00:00:00Z</updated>",
    b"<content type='text'>Fixes: --upload-pack=x</content>",
    b"<content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><pre>x</pre></div></content>",
    b"<content type='html'>&lt;b&gt;x</content>",
    b"<!DOCTYPE feed>",
    b"<!ENTITY a 'b'>",
    b"<html>",
    b"<?xml version='1.0' encoding='latin-1'?>",
]


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(FEED_PIECES), st.binary(max_size=20)), max_size=30))
def test_feeds_are_total(pieces: list[bytes]) -> None:
    must_be_total(parse_feed, b"".join(pieces))


@FUZZ
@given(_truncations(SAMPLES / "cgit-atom-tlb-h-v6.12.80.xml"))
def test_truncated_cgit_feed(data: bytes) -> None:
    must_be_total(parse_feed, data)


ARCHIVE_TEXTS = [
    (SAMPLES / "pipermail-arm64-ensure-lazy-mmu-never-nests.txt").read_text(),
    (SAMPLES / "xen-archive-reply-lazy-mmu-fixes-rfc.txt").read_text(),
    (SAMPLES / "mm-commits-added-mm-fix-lazy-mmu-docs-and-usage.txt").read_text(),
]


@FUZZ
@given(
    st.sampled_from(ARCHIVE_TEXTS),
    st.integers(min_value=0, max_value=9000),
    st.text(max_size=200),
)
def test_archive_and_mm_text_are_total(base: str, cut: int, noise: str) -> None:
    text = base[:cut] + noise
    must_be_total(parse_archive_text, text)
    must_be_total(parse_mm_commits_text, text)


@FUZZ
@given(st.text(max_size=300))
def test_diff_functions_on_any_text(text: str) -> None:
    must_be_total(parse_diff, text)
    must_be_total(extract_diff, text)
    must_be_total(patch_ids, text)
    must_be_total(split_message, text)
    must_be_total(parse_subject, text)
