"""tracker.ingest.lore on real lore threads (tests/data/samples/lore/, from shared samples)."""

from __future__ import annotations

import gzip
import socket
from functools import cache
from pathlib import Path

import b4  # only to plant traps on its network entry points
import pytest

from tracker.errors import SourceError
from tracker.ingest.lore import (
    ThreadInfo,
    parse_thread,
    search_url,
    series_key,
    split_patch_body,
    thread_url,
)

DATA = Path(__file__).parent / "data" / "samples" / "lore"
SPARC = "sparclinux_fix-lazy-mmu-mode_2025-03.mbox"
HUGETLB = "linux-arch_hugetlb-pmd-sharing-mmu_gather_2025-12.mbox"
REVIEW = "linuxppc_stable-review-patches_samples.mbox"


@cache
def thread(name: str) -> ThreadInfo:
    return parse_thread((DATA / name).read_bytes())


# --- URLs --------------------------------------------------------------------------------------


def test_thread_url_encodes_msgid() -> None:
    assert (
        thread_url("https://lore.kernel.org/", "<20250303141542.3371656-1-ryan.roberts@arm.com>")
        == "https://lore.kernel.org/all/20250303141542.3371656-1-ryan.roberts@arm.com/t.mbox.gz"
    )
    assert thread_url("http://127.0.0.1:8080/lore", "a/b%c?d#e@x") == (
        "http://127.0.0.1:8080/lore/all/a%2Fb%25c%3Fd%23e@x/t.mbox.gz"
    )
    # The ID from the Z/0V9r6... reply: "/" must not become a path separator.
    assert "/Z%2F0V9r6rjEjSH3fh@li" in thread_url("https://lore.kernel.org", "Z/0V9r6rjEjSH3fh@li")


@pytest.mark.parametrize("bad", ["", "<>", "a b@c", "a\nb@c", "x<y@z"])
def test_thread_url_rejects_bad_msgid(bad: str) -> None:
    with pytest.raises(SourceError, match="invalid Message-ID"):
        thread_url("https://lore.kernel.org", bad)


def test_thread_url_rejects_non_http_base() -> None:
    with pytest.raises(SourceError):
        thread_url("file:///srv/lore", "a@b")


def test_search_url() -> None:
    assert search_url("https://lore.kernel.org", "linux-mm", 's:"lazy mmu" AND dt:20250301..') == (
        "https://lore.kernel.org/linux-mm/?q=s%3A%22lazy%20mmu%22%20AND%20dt%3A20250301..&x=A"
    )
    assert search_url("https://lore.kernel.org/", "all", "f:akpm", mbox=True).endswith(
        "/all/?q=f%3Aakpm&x=m"
    )
    with pytest.raises(SourceError, match="invalid list"):
        search_url("https://lore.kernel.org", "../etc", "x")


# --- the "Fix lazy mmu mode" thread (sparclinux, March 2025) -------------------------------------


def test_sparc_messages() -> None:
    info = thread(SPARC)
    assert len(info.messages) == 28 and info.skipped == 0
    cover = info.message("20250303141542.3371656-1-ryan.roberts@arm.com")
    assert cover.subject == "[PATCH v2 0/5] Fix lazy mmu mode"
    assert (cover.from_name, cover.from_email) == ("Ryan Roberts", "ryan.roberts@arm.com")
    assert cover.in_reply_to is None
    assert cover.date is not None and cover.date.isoformat() == "2025-03-03T14:15:34+00:00"
    reply = info.message("d0de16ad-33d5-4878-8e7f-8e8cd1d44585@suse.com")
    assert reply.from_name == "Jürgen Groß"  # RFC 2047 decoded
    assert reply.in_reply_to == cover.msgid


def test_sparc_one_series_two_revisions() -> None:
    (series,) = thread(SPARC).series
    assert series.key == "subject:fix lazy mmu mode|ryan.roberts@arm.com"
    assert series.key == series_key("Fix lazy  MMU mode", "Ryan.Roberts@arm.com")
    assert [(r.revision, r.expected, len(r.patches)) for r in series.revisions] == [
        (1, 4, 4),
        (2, 5, 5),
    ]
    assert all(r.has_cover and r.complete and not r.resend for r in series.revisions)


def test_sparc_v2_patches() -> None:
    v2 = thread(SPARC).series[0].latest
    assert v2.revision == 2 and v2.subject == "Fix lazy mmu mode"
    assert v2.cover_msgid == "20250303141542.3371656-1-ryan.roberts@arm.com"
    assert [p.subject for p in v2.patches] == [
        "mm: Fix lazy mmu docs and usage",
        "fs/proc/task_mmu: Reduce scope of lazy mmu region",
        "sparc/mm: Disable preemption in lazy mmu mode",
        "sparc/mm: Avoid calling arch_enter/leave_lazy_mmu() in set_ptes",
        'Revert "x86/xen: allow nesting of same lazy mode"',
    ]
    assert [p.index for p in v2.patches] == [1, 2, 3, 4, 5]
    assert [p.msgid for p in v2.patches] == [
        f"20250303141542.3371656-{n}-ryan.roberts@arm.com" for n in range(2, 7)
    ]
    assert v2.missing == ()


def test_sparc_commit_message_and_diff() -> None:
    patch = thread(SPARC).series[0].latest.patch(2)
    assert (patch.author_name, patch.author_email) == ("Ryan Roberts", "ryan.roberts@arm.com")
    assert patch.message.startswith("Update the way arch_[enter|leave]_lazy_mmu_mode() is called")
    assert patch.message.endswith(
        "Acked-by: David Hildenbrand <david@redhat.com>\n"
        "Signed-off-by: Ryan Roberts <ryan.roberts@arm.com>\n"
    )
    assert patch.diff.startswith("diff --git a/fs/proc/task_mmu.c b/fs/proc/task_mmu.c\n")
    assert "pte_unmap_unlock(start_pte, ptl);" in patch.diff
    assert "2.43.0" not in patch.diff  # the signature is not part of the diff
    assert "file changed" not in patch.diff  # nor is the diffstat


def test_sparc_trailers_from_replies() -> None:
    v1, v2 = thread(SPARC).series[0].revisions
    acks = [(t.name, t.who_name, t.who_email) for t in v1.patch(2).trailers]
    assert acks == [
        ("Acked-by", "David Hildenbrand", "david@redhat.com"),
        ("Acked-by", "Andreas Larsson", "andreas@gaisler.com"),
    ]
    assert [t.source_msgid for t in v1.patch(2).trailers] == [
        "4af46304-cf25-4c4a-8e4a-3a566193ca62@redhat.com",
        "b2b03b41-8442-4c68-9c00-05e524673fe0@gaisler.com",
    ]
    assert not any(t.carried_over for t in v1.patch(2).trailers)
    # Juergen acked the whole v2 on the cover letter, once (b4 alone would report it twice).
    (juergen,) = v2.cover_trailers
    assert (juergen.name, juergen.value, juergen.carried_over) == (
        "Acked-by",
        "Juergen Gross <jgross@suse.com>",
        False,
    )


def test_sparc_v2_carries_unchanged_patch_acks() -> None:
    v1, v2 = thread(SPARC).series[0].revisions
    # v1 2/4 and v2 3/5 are the same diff (same patch-id), so v1's acks carry over.
    assert v1.patch(2).patch_id == v2.patch(3).patch_id is not None
    carried = v2.patch(3).trailers
    assert [(t.who_email, t.carried_over) for t in carried] == [
        ("david@redhat.com", True),
        ("andreas@gaisler.com", True),
    ]
    # v2 1/5 changed, so v1's ack on 1/4 does not carry.
    assert v1.patch(1).patch_id != v2.patch(1).patch_id
    assert v2.patch(1).trailers == ()


# --- hugetlb PMD sharing: v1, v2, v3 (missing a patch) and RESEND v3 -----------------------------


def test_hugetlb_resend_is_its_own_posting() -> None:
    info = thread(HUGETLB)
    assert len(info.messages) == 70
    (series,) = info.series
    assert [(r.revision, r.resend, r.expected, r.complete) for r in series.revisions] == [
        (1, False, 4, True),
        (2, False, 4, True),
        (3, False, 3, True),
        (3, True, 4, True),
    ]
    v3, resend = series.revision(3)
    assert v3.root_msgid == "20251223205046.565162-1-david@kernel.org"
    assert resend.root_msgid == "20251223214037.580860-1-david@kernel.org"
    assert resend.base_commit == "b927546677c876e26eba308550207c2ddf812a43"
    assert resend.patch(1).subject == "mm/hugetlb: fix hugetlb_pmd_shared()"
    assert v3.patch(1).subject == "mm/hugetlb: fix two comments related to huge_pmd_unshare()"
    assert series.latest is resend


def test_hugetlb_trailers() -> None:
    resend = thread(HUGETLB).series[0].latest
    assert [(t.name, t.who_email) for t in resend.cover_trailers] == [
        ("Tested-by", "loberman@redhat.com")
    ]
    direct = [(t.name, t.who_name) for t in resend.patch(4).trailers]
    assert direct == [("Acked-by", "Harry Yoo"), ("Reviewed-by", "Lorenzo Stoakes")]
    assert not any(t.carried_over for t in resend.patch(4).trailers)
    first = resend.patch(1).trailers
    assert ("Acked-by", "osalvador@suse.de", True) in [
        (t.name, t.who_email, t.carried_over) for t in first
    ]


# --- stable review patches: many series, no covers ---------------------------------------------


def test_stable_review_in_body_author_and_upstream_line() -> None:
    info = thread(REVIEW)
    assert len(info.messages) == 160
    patch = next(
        r.patch(79)
        for s in info.series
        for r in s.revisions
        if r.root_msgid == "<20190515090722.696531131@linuxfoundation.org>"
    )
    assert patch.subject == "powerpc/fsl: Enable runtime patching if nospectre_v2 boot arg is used"
    assert (patch.author_name, patch.author_email) == ("Diana Craciun", "diana.craciun@nxp.com")
    assert patch.message.startswith("commit 3bc8ea8603ae4c1e09aca8de229ad38b8091fcb3 upstream.\n")
    assert patch.diff.startswith("--- a/arch/powerpc/kernel/setup_32.c\n")


def test_stable_review_postings_without_cover_are_not_linked() -> None:
    info = thread(REVIEW)
    for series in info.series:
        if series.key.startswith("posting:"):
            assert len(series.revisions) == 1 and not series.latest.has_cover


# --- robustness ------------------------------------------------------------------------------


def test_gzip_input_and_truncated_gzip() -> None:
    raw = (DATA / SPARC).read_bytes()
    assert parse_thread(gzip.compress(raw)).series == thread(SPARC).series
    with pytest.raises(SourceError, match="truncated gzip"):
        parse_thread(gzip.compress(raw)[:5000])


def test_empty_and_garbage_input() -> None:
    assert parse_thread(b"") == ThreadInfo(messages=(), series=(), skipped=0)
    info = parse_thread(b"From x\nSubject: no message id\n\nhello\n")
    assert info.messages == () and info.skipped == 1


def test_b4_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ("get_requests_session", "get_lore_node", "get_pi_search_results"):
        monkeypatch.setattr(b4, name, refuse)
    info = parse_thread((DATA / SPARC).read_bytes())
    assert info.series[0].latest.revision == 2
    assert b4.can_network is False


def test_split_patch_body_inbody_from_and_no_separator() -> None:
    body = (
        "From: Jane Doe <jane@example.org>\n\nFix the thing.\n\n"
        "Signed-off-by: Jane Doe <jane@example.org>\n"
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
    )
    message, diff, headers = split_patch_body(body)
    assert headers == {"from": "Jane Doe <jane@example.org>"}
    assert message == "Fix the thing.\n\nSigned-off-by: Jane Doe <jane@example.org>\n"
    assert diff.startswith("diff --git a/x b/x\n")
