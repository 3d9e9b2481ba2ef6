"""Trailer parsing over the forms seen in real kernel mails (shared/formats.md §6)."""

from __future__ import annotations

import re

import pytest

from tracker.parse.trailers import msgid_from_link, parse_trailers

UP = "fea18c686320a53fce7ad62a87a3e1d10ad02f31"


def test_fixes_forms() -> None:
    t = parse_trailers(
        'x\n\nFixes: 2ba3e6947aed ("mm/vmalloc: track which page-table levels were modified")\n'
        "fixes: commit 38e0edb15bd0\nFixes: --upload-pack=x\n"
    )
    assert [f.sha for f in t.fixes] == ["2ba3e6947aed", "38e0edb15bd0", "--upload-pack=x"]
    assert t.fixes[0].subject == "mm/vmalloc: track which page-table levels were modified"
    assert [f.valid for f in t.fixes] == [True, True, False]
    assert t.invalid == ("Fixes: --upload-pack=x",)


def test_upstream_forms() -> None:
    assert parse_trailers(f"s\n\ncommit {UP} upstream.\n").upstream == UP
    assert parse_trailers(f"s\n\n[ Upstream commit {UP} ]\n").upstream == UP
    assert parse_trailers(f"s\n\n(cherry picked from commit {UP})\n").upstream is None
    custom = parse_trailers(
        f"s\n\n[ upstream commit {UP} ]\n", [r"^\[ upstream commit (?P<sha>[0-9a-f]{40}) \]$"]
    )
    assert custom.upstream == UP


def test_stable_only_revert_is_not_an_upstream_reference() -> None:
    stable = "2e31443a0d18e4cd8e3b8d2a1e2b8e3f4b5c6d7e"
    t = parse_trailers(
        f'Revert "x"\n\nThis reverts commit {stable} which is\ncommit {UP} upstream.\n'
    )
    assert t.upstream is None
    assert t.reverts == (stable,)
    assert t.reverts_upstream == (UP,)


def test_stable_dep_of_links_and_nominations() -> None:
    t = parse_trailers(
        "s\n\n"
        'Stable-dep-of: c8c6fb886f57 ("ata: libata: Print features also for ATAPI devices")\n'
        "Link: https://lore.kernel.org/r/20250303141542.3371656-1-ryan.roberts@arm.com\n"
        "Link: https://lkml.kernel.org/r/20250623075721.2817094-1-agordeev@linux.ibm.com\n"
        "Link: https://patch.msgid.link/abc@def\n"
        "Message-ID: <xen-123@example.org>\n"
        "Cc: <stable@vger.kernel.org> # 6.1.x\n"
        "Cc: stable@vger.kernel.org # v5.14+\n"
        "Cc: <stable@vger.kernel.org> # 3.3.x: a1f84a3: sched: Check for idle\n"
        "Cc: stable+noautosel@kernel.org # needs manual backport\n"
    )
    assert t.stable_dep_of[0].sha == "c8c6fb886f57"
    assert t.link_msgids == (
        "20250303141542.3371656-1-ryan.roberts@arm.com",
        "20250623075721.2817094-1-agordeev@linux.ibm.com",
        "abc@def",
        "xen-123@example.org",
    )
    assert [n.min_version for n in t.cc_stable] == [(6, 1), (5, 14), (3, 3), None]
    prereq = t.cc_stable[2].prerequisite
    assert prereq is not None and prereq.sha == "a1f84a3"
    assert t.cc_stable[3].noautosel


def test_msgid_from_link_rejects_other_urls() -> None:
    assert msgid_from_link("https://example.org/r/abc@def") is None
    assert msgid_from_link("https://lore.kernel.org/linux-mm/abc@def/") == "abc@def"


def test_msgid_link_forms() -> None:
    assert (
        msgid_from_link("https://msgid.link/20231229120107.2281153-1-mpe@ellerman.id.au")
        == "20231229120107.2281153-1-mpe@ellerman.id.au"
    )
    assert msgid_from_link("https://lore.kernel.org/r/a%2Fb%40c@d") == "a/b@c@d"


# Malformed Fixes: tags as they appear in the sparclinux archive (shared/corpus), and the forms
# issue 11 quotes from another list; each is read and says how it was repaired.
REAL_FIXES = (
    (
        '    Fixes: caf5e32d4ea7 ("y2038: ipc: remove __kernel_time_t reference\n'
        'from headers")\n    Reported-by: Ben Hutchings <ben.hutchings@codethink.co.uk>\n',
        "caf5e32d4ea7",
        "y2038: ipc: remove __kernel_time_t reference from headers",
        "subject wrapped onto 1 more line",
    ),
    (
        'Fixes: a050ba1e7422 ("mm/fault: convert remaining simple cases to\n'
        'lock_mm_and_find_vma()")\nSigned-off-by: Linus Torvalds <torvalds@linux-foundation.org>\n',
        "a050ba1e7422",
        "mm/fault: convert remaining simple cases to lock_mm_and_find_vma()",
        "subject wrapped onto 1 more line",
    ),
    (
        '    Fixes: cf51e129b968 "sparc32: fix register window handling in genregs32_[gs]et()"\n',
        "cf51e129b968",
        "sparc32: fix register window handling in genregs32_[gs]et()",
        "quoted subject without parentheses",
    ),
    (
        'Fixes: d57d6fe5bf34 ("drivers: hv: log when enabling crash_kexec_post_notifiers"\n'
        "Cc: Andrea Parri (Microsoft) <parri.andrea@gmail.com>\n",
        "d57d6fe5bf34",
        "drivers: hv: log when enabling crash_kexec_post_notifiers",
        "closing parenthesis missing",
    ),
    (
        'Fixes: 28eceeda130f "fs: Lock moved directories"\n',
        "28eceeda130f",
        "fs: Lock moved directories",
        "quoted subject without parentheses",
    ),
    (
        'Fixes: Fixes: 6b15f678fb7d ("drm/amd/display: fix a deadlock")\n',
        "6b15f678fb7d",
        "drm/amd/display: fix a deadlock",
        "'Fixes:' written twice",
    ),
    (
        'Fixes: 6b15f678fb7d, ("drm/amd/display: fix a deadlock")\n',
        "6b15f678fb7d",
        "drm/amd/display: fix a deadlock",
        "',' after the commit id",
    ),
)


def test_real_malformed_fixes_are_repaired_and_say_how() -> None:
    for text, sha, subject, how in REAL_FIXES:
        t = parse_trailers("subject\n\nbody\n\n" + text)
        assert t.invalid == (), text
        (ref,) = t.fixes
        assert (ref.sha, ref.subject, ref.repair) == (sha, subject, how), text
        assert ref.valid


def test_usual_fixes_is_not_flagged_and_prose_stays_invalid() -> None:
    t = parse_trailers(
        'x\n\nFixes: 2ba3e6947aed ("mm/vmalloc: track levels")\n'
        # Real non-tags from the archive: versions and prose after "Fixes:" name no commit.
        "Fixes: v2.1.29\nFixes: 2.3.41\nFixes: tag?\n"
        "Fixes: marker to these. I let you decide if you want to drop them (or\n"
    )
    assert [(f.sha, f.repair) for f in t.fixes if f.valid] == [("2ba3e6947aed", None)]
    assert all(f.repair is None for f in t.fixes)
    assert len(t.invalid) == 4


def test_repaired_fixes_row_and_evidence_are_flagged() -> None:
    from tracker.store.trailer_rows import trailer_rows, with_repair

    t = parse_trailers('x\n\nFixes: 28eceeda130f "fs: Lock moved directories"\n')
    (row,) = [r for r in trailer_rows(t, commit_sha="a" * 40) if r["kind"] == "fixes"]
    assert row["value"] == "28eceeda130f"
    evidence, flagged = with_repair("resolved by prefix", False, row["note"])
    assert flagged
    assert "quoted subject without parentheses" in evidence
    plain = parse_trailers('x\n\nFixes: 28eceeda130f ("fs: Lock moved directories")\n')
    (prow,) = [r for r in trailer_rows(plain) if r["kind"] == "fixes"]
    assert with_repair("ok", False, prow["note"]) == ("ok", False)


def test_another_projects_stable_list() -> None:
    msg = "net/ice: fix a leak\n\nCc: stable@dpdk.org # 22.11\nCc: <stable@vger.kernel.org>\n"
    dpdk = parse_trailers(msg, None, r"stable@dpdk\.org").cc_stable
    assert [(n.address, n.min_version) for n in dpdk] == [("stable@dpdk.org", (22, 11))]
    kernel = parse_trailers(msg).cc_stable
    assert [n.address for n in kernel] == ["stable@vger.kernel.org"]


@pytest.mark.parametrize(
    "message",
    [
        "subject\n\n  \nLink: https://lore.kernel.org/r/a@b\nLINK: https://x/y",
        "İİ then Link: not-a-trailer\nLink: https://lore.kernel.org/r/c@d",
        "subject\n\nCloses: https://bugs/1\n  Link: https://lore.kernel.org/r/e@f",
        "a link: inline\n\n\n Link: https://lore.kernel.org/r/g@h",
        "\n\nlink: https://lore.kernel.org/r/i@j",
        "no trailers at all",
    ],
)
def test_links_are_found_wherever_the_scan_starts(message: str) -> None:
    # The scan starts at the first line naming a link trailer; every line-anchored match of
    # the whole message must still be found, in order.
    everywhere = re.compile(r"^\s*(?:Link|Closes):\s*(?P<url>\S+)", re.IGNORECASE | re.MULTILINE)
    assert list(parse_trailers(message).links) == [
        m.group("url") for m in everywhere.finditer(message)
    ]
