"""Golden tests of the ingest parsers over every document in tests/data/samples.

Forms that the samples do not contain (Greg's "added" mail with a reproducer, Sasha's git-show
form, review covers, AUTOSEL, tester and drop replies, real mm-commits mails, public-inbox Atom)
are built from the excerpts in /work/shared/formats.md, marked "formats.md" below.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tracker.errors import SourceError
from tracker.ingest.archive import parse_archive_text, split_quotes
from tracker.ingest.atom import msgid_from_url, parse_cgit_atom, parse_feed, parse_public_inbox_atom
from tracker.ingest.mmcommits import (
    MmAdded,
    MmRemoved,
    parse_mm_commits,
    parse_mm_commits_text,
    parse_tip_commit,
)
from tracker.ingest.stablemail import (
    AutoselPatch,
    BackportSubmission,
    Dependency,
    Dropped,
    DropRequest,
    FailedToApply,
    QueueAdded,
    ReviewCover,
    ReviewPatch,
    ReviewTested,
    parse_stable_mail,
)
from tracker.parse.mail import Mail, parse_mail, split_mbox
from tracker.parse.patch import parse_diff

SAMPLES = Path(__file__).parent / "data" / "samples"
LORE = SAMPLES / "lore"


def mails(name: str) -> list[Mail]:
    return [parse_mail(raw) for raw in split_mbox((LORE / name).read_bytes())]


def mail(text: str) -> Mail:
    return parse_mail(text.encode())


# ------------------------------------------------------------------------------------------
# stable mails: real samples


def test_failed_eml_greg_form() -> None:
    raw = (SAMPLES / "stable-mail/FAILED_59d9094df3d7_6.6-stable_2025-01-06.eml").read_bytes()
    rec = parse_stable_mail(parse_mail(raw))
    assert isinstance(rec, FailedToApply)
    assert rec.kind == "failed"
    assert rec.branch == "6.6"
    assert rec.sha == "59d9094df3d79443937add8700b2ef1a866b1081"
    assert rec.patch_subject == "mm: hugetlb: independent PMD page table shared count"
    assert rec.fetch_ref == "linux-6.6.y"
    assert rec.reply_to == "2025010620-lethargic-backspin-e75d@gregkh"
    assert rec.has_dependency_list and rec.dependencies == ()
    assert rec.form == "greg"
    assert rec.patch is not None
    assert rec.patch.sha == rec.sha
    assert rec.patch.author_email == "liushixin2@huawei.com"
    assert [f.sha for f in rec.patch.trailers.fixes] == ["39dde65c9940"]
    assert rec.patch.trailers.link_msgids == ("20241216071147.3984217-1-liushixin2@huawei.com",)
    assert rec.patch.diff is not None and rec.patch.diff.paths == ("include/linux/mm.h",)


def test_review_patch_eml() -> None:
    raw = (
        SAMPLES / "stable-mail/PATCH_6.1_78-79_mm-vmalloc-leave-lazy-MMU-mode_2025-07-22.eml"
    ).read_bytes()
    rec = parse_stable_mail(parse_mail(raw))
    assert isinstance(rec, ReviewPatch)
    assert (rec.branch, rec.index, rec.total) == ("6.1", 78, 79)
    assert rec.upstream == "fea18c686320a53fce7ad62a87a3e1d10ad02f31"
    assert rec.upstream_rule == "upstream-pattern-0"
    assert rec.cover_msgid == "20250722134328.384139905@linuxfoundation.org"
    assert (rec.author_name, rec.author_email) == ("Alexander Gordeev", "agordeev@linux.ibm.com")
    assert [f.sha for f in rec.trailers.fixes] == ["2ba3e6947aed"]
    assert rec.review_marker
    assert rec.diff is not None and rec.diff.form == "plain"
    assert rec.diff.patch_id == "67d83e6d1388eb81fa61fa5052162424c94530be"


FAILED_MBOX_EXPECTED = [
    ("5.15", "5580e96dad5a439d561d9648ffcbccb739c2a120"),
    ("5.15", "777f81f0a9c780a6443bcf2c7785f0cc2e87c1ef"),
    ("5.10", "5580e96dad5a439d561d9648ffcbccb739c2a120"),
    ("5.10", "777f81f0a9c780a6443bcf2c7785f0cc2e87c1ef"),
    ("5.10", "35f20786c481d5ced9283ff42de5c69b65e5ed13"),
    ("5.4", "5580e96dad5a439d561d9648ffcbccb739c2a120"),
    ("5.4", "777f81f0a9c780a6443bcf2c7785f0cc2e87c1ef"),
    ("5.4", "35f20786c481d5ced9283ff42de5c69b65e5ed13"),
    ("5.4", "002bf2fbc00e5c4b95fb167287e2ae7d1973281e"),
    ("4.19", "5580e96dad5a439d561d9648ffcbccb739c2a120"),
    ("4.19", "777f81f0a9c780a6443bcf2c7785f0cc2e87c1ef"),
    ("4.19", "35f20786c481d5ced9283ff42de5c69b65e5ed13"),
    ("4.19", "002bf2fbc00e5c4b95fb167287e2ae7d1973281e"),
    ("6.12", "52f527d0916bcdd7621a0c9e7e599b133294d495"),
    ("6.12", "33c1c6d8a28a2761ac74b0380b2563cf546c2a3a"),
    ("6.12", "36bd7d5deef936c4e1e3cd341598140e5c14c1d3"),
    ("6.6", "52f527d0916bcdd7621a0c9e7e599b133294d495"),
    ("6.6", "33c1c6d8a28a2761ac74b0380b2563cf546c2a3a"),
    ("6.6", "36bd7d5deef936c4e1e3cd341598140e5c14c1d3"),
    ("6.1", "52f527d0916bcdd7621a0c9e7e599b133294d495"),
    ("6.1", "33c1c6d8a28a2761ac74b0380b2563cf546c2a3a"),
    ("6.1", "36bd7d5deef936c4e1e3cd341598140e5c14c1d3"),
    ("5.15", "52f527d0916bcdd7621a0c9e7e599b133294d495"),
    ("5.15", "33c1c6d8a28a2761ac74b0380b2563cf546c2a3a"),
    ("5.15", "36bd7d5deef936c4e1e3cd341598140e5c14c1d3"),
    ("5.10", "148891e95014b5dc5878acefa57f1940c281c431"),
    ("5.10", "52f527d0916bcdd7621a0c9e7e599b133294d495"),
    ("5.10", "36bd7d5deef936c4e1e3cd341598140e5c14c1d3"),
]


def test_failed_mbox_sasha_variant() -> None:
    recs = [parse_stable_mail(m) for m in mails("linuxppc_FAILED-to-apply_samples.mbox")]
    assert all(isinstance(r, FailedToApply) for r in recs)
    failed = [r for r in recs if isinstance(r, FailedToApply)]
    assert [(r.branch, r.sha) for r in failed] == FAILED_MBOX_EXPECTED
    assert {r.form for r in failed} == {"sasha"}
    assert all(not r.has_dependency_list and r.reply_to is None for r in failed)
    first = failed[0]
    assert first.patch_subject == "powerpc/smp: Adjust nr_cpu_ids to cover all threads of a core"
    assert first.patch is not None and first.patch.author_email == "mpe@ellerman.id.au"
    assert first.patch.diff is not None
    assert first.patch.diff.paths == ("arch/powerpc/kernel/prom.c",)
    # The same commit failing on several branches is recognisably one change.
    ids = {r.patch.diff.patch_id for r in failed if r.sha == first.sha and r.patch and r.patch.diff}
    assert len(ids) == 1


ADDED_EXPECTED = {
    "0026-s390-speculation-Support-mitigations-cmdline-option.patch": (
        "0336e04a6520bdaefdb0769d2a70084fa52e81ed",
        "greg",
        "s390/speculation: Support 'mitigations=' cmdline option",
    ),
    "mm-slub-prevent-kmalloc_node-crashes-and-memory-leaks.patch": (
        "0715e6c516f106ed553828a671d30ad9a3431536",
        "greg",
        "mm, slub: prevent kmalloc_node crashes and memory leaks",
    ),
    "asm-generic-tlb-arch-invert-config_have_rcu_table_invalidate.patch": (
        "96bc9567cbe112e9320250f01b9c060c882e8619",
        "forwarded",
        "asm-generic/tlb, arch: Invert CONFIG_HAVE_RCU_TABLE_INVALIDATE",
    ),
    "mm-mmu_gather-invalidate-tlb-correctly-on-batch-allocation-failure-and-flush.patch": (
        "0ed1325967ab5f7a4549a2641c6ebe115f76e228",
        "forwarded",
        "mm/mmu_gather: invalidate TLB correctly on batch allocation failure and flush",
    ),
    "spi-fsl-spi-re-organise-transfer-bits_per_word-adaptation.patch": (
        "8a5299a1278eadf1e08a598a5345c376206f171e",
        "forwarded",
        "spi: fsl-spi: Re-organise transfer bits_per_word adaptation",
    ),
    "powerpc-use-always-instead-of-always-y-in-for-crtsavres.o.patch": (
        None,
        "forwarded",
        "powerpc: Use always instead of always-y in for crtsavres.o",
    ),
}


def test_added_mbox() -> None:
    recs = [parse_stable_mail(m) for m in mails("linuxppc_added-to-4.19-stable_samples.mbox")]
    added = [r for r in recs if isinstance(r, QueueAdded)]
    assert len(added) == len(recs) == 19
    assert {(r.branch, r.queue_dir) for r in added} == {("4.19", "queue-4.19")}
    by_file = {r.queue_filename: r for r in added}
    for filename, (upstream, form, subject) in ADDED_EXPECTED.items():
        rec = by_file[filename]
        assert (rec.upstream, rec.form, rec.patch_subject) == (upstream, form, subject), filename
    s390 = by_file["0026-s390-speculation-Support-mitigations-cmdline-option.patch"]
    assert s390.patch is not None
    # The format-patch line names the sender's backport commit, not the upstream one.
    assert s390.patch.sha == "4feab80ca8eef453dee018aecc877a5b1c4bc84d"
    assert s390.patch.author_email == "jpoimboe@redhat.com"
    tlb = by_file["asm-generic-tlb-arch-invert-config_have_rcu_table_invalidate.patch"]
    assert tlb.patch is not None and tlb.patch.sender == "foo@baz"
    assert tlb.patch.author_email == "peterz@infradead.org"  # the in-body From:
    assert tlb.patch.trailers.cc_stable[0].note == "4.19"
    crtsavres = by_file["powerpc-use-always-instead-of-always-y-in-for-crtsavres.o.patch"]
    assert crtsavres.patch is not None
    assert [f.sha for f in crtsavres.patch.trailers.fixes] == ["b7b85ec5ec15"]


def test_review_mbox() -> None:
    all_mails = mails("linuxppc_stable-review-patches_samples.mbox")
    recs = [parse_stable_mail(m) for m in all_mails]
    kinds = Counter(r.kind if r else None for r in recs)
    assert kinds == {"review-patch": 157, "backport": 2, None: 1}
    reviews = {(r.branch, r.index): r for r in recs if isinstance(r, ReviewPatch)}
    perf = reviews[("6.5", 97)]
    assert perf.total == 285
    assert perf.upstream == "0dd1f815545d7210150642741c364521cc5cf116"
    assert [d.sha for d in perf.stable_dep_of] == ["a84260e31402"]
    assert perf.author_email == "kjain@linux.ibm.com"
    assert perf.cover_msgid == "20230917191051.639202302@linuxfoundation.org"
    assert perf.diff is not None and perf.diff.form == "git"
    fsl = reviews[("4.4", 79)]
    assert (fsl.total, fsl.upstream) == (266, "3bc8ea8603ae4c1e09aca8de229ad38b8091fcb3")
    assert not fsl.review_marker  # 2019 mails: no marker line, recognised by quilt/counter
    lsq = reviews[("3.16", 9)]
    assert lsq.review_marker and lsq.total == 86
    assert lsq.upstream == "c0ccf6f99e3a43b87980c9df7da48427885206d0"
    sasha = reviews[("6.8", 412)]
    assert sasha.upstream == "7edd06233958d9086a9e3eb723a8768d3c5a9ce1"
    assert [f.sha for f in sasha.trailers.fixes] == ["dae7fbf43fd0", "a3b6792e990d"]
    backports = [r for r in recs if isinstance(r, BackportSubmission)]
    assert [(b.branch, b.index, b.total, b.upstream) for b in backports] == [
        ("5.15", 2, 6, "65d9a9a60fd71be964effb2e94747a6acb6e7015"),
        ("5.15", 3, 6, "0738eceb6201691534df07e0928d0a6168a35787"),
    ]


@pytest.mark.parametrize(
    "name",
    [
        "linux-arch_hugetlb-pmd-sharing-mmu_gather_2025-12.mbox",
        "sparclinux_fix-lazy-mmu-mode_2025-03.mbox",
        "tip-commits_tlb-lazy-hugetlb_notifications.mbox",
    ],
)
def test_non_stable_threads_are_not_stable_mails(name: str) -> None:
    assert all(parse_stable_mail(m) is None for m in mails(name))


def test_lore_series_fixes_targets() -> None:
    from tracker.parse.patch import split_message
    from tracker.parse.trailers import parse_trailers

    fixes = {}
    for m in mails("sparclinux_fix-lazy-mmu-mode_2025-03.mbox"):
        if m.tags.is_reply or m.tags.version != 2:
            continue
        message, _ = split_message(m.body)
        fixes[m.tags.index] = [f.sha for f in parse_trailers(message).fixes]
    assert fixes == {
        0: [],
        1: ["bcc6cc832573"],
        2: [],
        3: ["38e0edb15bd0"],
        4: ["1a10a44dfc1d"],
        5: [],
    }


# ------------------------------------------------------------------------------------------
# stable mails: forms from formats.md

GREG_ADDED = """\
Subject: Patch "iio: dac: ad3552r: clear reset status flag" has been added to the 6.12-stable tree
To: Jonathan.Cameron@huawei.com,Stable@vger.kernel.org,adureghello@baylibre.com
Cc: <stable-commits@vger.kernel.org>
From: <gregkh@linuxfoundation.org>
Date: Mon, 10 Mar 2025 12:00:49 +0100
Message-ID: <2025031049-afflicted-mangy-4da9@gregkh>
X-stable: commit
X-Patchwork-Hint: ignore

This is a note to let you know that I've just added the patch titled

    iio: dac: ad3552r: clear reset status flag

to the 6.12-stable tree which can be found at:
    http://www.kernel.org/git/?p=linux/kernel/git/stable/stable-queue.git;a=summary

The filename of the patch is:
     iio-dac-ad3552r-clear-reset-status-flag.patch
and it can be found in the queue-6.12 subdirectory.

If you, or anyone else, feels it should not be added to the stable tree,
please let <stable@vger.kernel.org> know about it.


From e17b9f20da7d2bc1f48878ab2230523b2512d965 Mon Sep 17 00:00:00 2001
From: Angelo Dureghello <adureghello@baylibre.com>
Date: Sat, 25 Jan 2025 17:24:32 +0100
Subject: iio: dac: ad3552r: clear reset status flag

From: Angelo Dureghello <adureghello@baylibre.com>

commit e17b9f20da7d2bc1f48878ab2230523b2512d965 upstream.

Remove reset status flag.

Fixes: 0b4d9fe58be8 ("iio: dac: ad3552r: add support for ad3552r")
Cc: stable@vger.kernel.org
Signed-off-by: Greg Kroah-Hartman <gregkh@linuxfoundation.org>
---
 drivers/iio/dac/ad3552r.c |    1 +
 1 file changed, 1 insertion(+)

--- a/drivers/iio/dac/ad3552r.c
+++ b/drivers/iio/dac/ad3552r.c
@@ -10,2 +10,3 @@ static int x(void)
 \ta();
+\tb();
 \tc();


Patches currently in stable-queue which might be from adureghello@baylibre.com are
"""

SASHA_ADDED = """\
Subject: Patch "mm: foo" has been added to the 6.12-stable tree
From: Sasha Levin <sashal@kernel.org>
Date: Sun, 15 Jun 2025 09:05:32 -0400
Message-ID: <20250615130532.1082031-1-sashal@kernel.org>
X-stable: commit

This is a note to let you know that I've just added the patch titled

    mm: foo

to the 6.12-stable tree which can be found at:
    http://www.kernel.org/git/?p=linux/kernel/git/stable/stable-queue.git;a=summary

The filename of the patch is:
     mm-foo.patch
and it can be found in the queue-6.12 subdirectory.

If you, or anyone else, feels it should not be added to the stable tree,
please let <stable@vger.kernel.org> know about it.



commit 1111111111111111111111111111111111111111
Author: Jane Dev <jane@example.org>
Date:   Tue Jun 3 10:00:00 2025 +0200

    mm: foo

    [ Upstream commit 2222222222222222222222222222222222222222 ]

    Body.

    Stable-dep-of: 333333333333 ("mm: bar")
    Signed-off-by: Sasha Levin <sashal@kernel.org>

diff --git a/mm/foo.c b/mm/foo.c
index 1234567..89abcde 100644
--- a/mm/foo.c
+++ b/mm/foo.c
@@ -1 +1 @@
-a
+b
"""


def test_greg_added_form() -> None:
    rec = parse_stable_mail(mail(GREG_ADDED))
    assert isinstance(rec, QueueAdded)
    assert rec.kind == "added"
    assert (rec.branch, rec.queue_dir) == ("6.12", "queue-6.12")
    assert rec.queue_filename == "iio-dac-ad3552r-clear-reset-status-flag.patch"
    assert rec.patch_subject == "iio: dac: ad3552r: clear reset status flag"
    assert rec.upstream == "e17b9f20da7d2bc1f48878ab2230523b2512d965"
    assert rec.form == "greg"
    assert rec.patch is not None and rec.patch.sha == rec.upstream
    assert [f.sha for f in rec.patch.trailers.fixes] == ["0b4d9fe58be8"]
    assert rec.patch.diff is not None and rec.patch.diff.paths == ("drivers/iio/dac/ad3552r.c",)


def test_sasha_added_git_show_form() -> None:
    rec = parse_stable_mail(mail(SASHA_ADDED))
    assert isinstance(rec, QueueAdded)
    assert rec.form == "sasha"
    assert rec.upstream == "2222222222222222222222222222222222222222"
    assert rec.patch is not None
    assert rec.patch.sha == "1111111111111111111111111111111111111111"  # the queue commit
    assert (rec.patch.author_name, rec.patch.author_email) == ("Jane Dev", "jane@example.org")
    assert rec.patch.subject == "mm: foo"
    assert [d.sha for d in rec.patch.trailers.stable_dep_of] == ["333333333333"]
    assert rec.patch.diff is not None and rec.patch.diff.patch_id is not None


GREG_FAILED_WITH_DEPS = """\
Subject: FAILED: patch "[PATCH] dev/parport: fix the array out-of-bounds risk" failed to apply to 5.4-stable tree
To: tuhaowen@uniontech.com,gregkh@linuxfoundation.org,stable@kernel.org
Cc: <stable@vger.kernel.org>
From: <gregkh@linuxfoundation.org>
Date: Mon, 29 Jul 2024 14:14:38 +0200
Message-ID: <2024072938-roundworm-wagon-ec6b@gregkh>

The patch below does not apply to the 5.4-stable tree.
If someone wants it applied there, or to any other stable or longterm
tree, then please email the backport, including the original git commit
id to <stable@vger.kernel.org>.

To reproduce the conflict and resubmit, you may use the following commands:

git fetch https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git/ linux-5.4.y
git checkout FETCH_HEAD
git cherry-pick -x ab11dac93d2d568d151b1918d7b84c2d02bacbd5
# <resolve conflicts, build, test, etc.>
git commit -s
git send-email --to '<stable@vger.kernel.org>' --in-reply-to '2024072938-roundworm-wagon-ec6b@gregkh' --subject-prefix 'PATCH 5.4.y' HEAD^..

Possible dependencies:

ab11dac93d2d ("dev/parport: fix the array out-of-bounds risk")
a6abfdff4fe5 ("parport: Standardize use of printmode")
decf26f6ec25 ("parport: Convert printk(KERN_<LEVEL> to pr_<level>(")

thanks,

greg k-h

------------------ original commit in Linus's tree ------------------

From ab11dac93d2d568d151b1918d7b84c2d02bacbd5 Mon Sep 17 00:00:00 2001
From: tuhaowen <tuhaowen@uniontech.com>
Date: Wed, 17 Jul 2024 16:04:30 +0800
Subject: [PATCH] dev/parport: fix the array out-of-bounds risk

Fixes the risk.

Cc: stable <stable@kernel.org>
Signed-off-by: tuhaowen <tuhaowen@uniontech.com>
"""  # noqa: E501

OLD_FAILED = """\
Subject: FAILED: patch "[PATCH] x: y" failed to apply to 4.19-stable tree
From: <gregkh@linuxfoundation.org>
Message-ID: <1556000000123@kroah.com>
Date: Tue, 23 Apr 2019 10:00:00 +0200

The patch below does not apply to the 4.19-stable tree.
If someone wants it applied there, or to any other stable or longterm
tree, then please email the backport, including the original git commit
id to <stable@vger.kernel.org>.

thanks,

greg k-h

------------------ original commit in Linus's tree ------------------

>From 4444444444444444444444444444444444444444 Mon Sep 17 00:00:00 2001
From: A <a@example.org>
Date: Mon, 22 Apr 2019 10:00:00 +0200
Subject: [PATCH] x: y

Body.
"""


def test_greg_failed_with_dependencies() -> None:
    rec = parse_stable_mail(mail(GREG_FAILED_WITH_DEPS))
    assert isinstance(rec, FailedToApply)
    assert rec.branch == "5.4"
    assert rec.sha == "ab11dac93d2d568d151b1918d7b84c2d02bacbd5"
    assert rec.patch_subject == "dev/parport: fix the array out-of-bounds risk"
    assert rec.dependencies == (
        Dependency("ab11dac93d2d", "dev/parport: fix the array out-of-bounds risk"),
        Dependency("a6abfdff4fe5", "parport: Standardize use of printmode"),
        Dependency("decf26f6ec25", "parport: Convert printk(KERN_<LEVEL> to pr_<level>("),
    )
    assert rec.dependencies[0].sha == rec.sha[:12]  # the list starts with the commit itself
    assert rec.reply_to == "2024072938-roundworm-wagon-ec6b@gregkh"
    assert rec.form == "greg"


def test_old_failed_form() -> None:
    rec = parse_stable_mail(mail(OLD_FAILED))
    assert isinstance(rec, FailedToApply)
    assert rec.form == "greg-old"
    assert rec.sha == "4444444444444444444444444444444444444444"
    assert not rec.has_dependency_list and rec.reply_to is None and rec.fetch_ref is None


REVIEW_COVER = """\
From: Greg Kroah-Hartman <gregkh@linuxfoundation.org>
Subject: [PATCH 6.12 000/169] 6.12.68-rc1 review
Date: Wed, 28 Jan 2026 14:53:02 +0100
Message-ID: <20260128145302.000000000@linuxfoundation.org>

This is the start of the stable review cycle for the 6.12.68 release.
There are 169 patches in this series, all will be posted as a response
to this one.  If anyone has any issues with these being applied, please
let me know.

Responses should be made by Fri, 30 Jan 2026 14:53:02 +0000.
Anything received after that time might be too late.

The whole patch series can be found in one patch at:
	https://www.kernel.org/pub/linux/kernel/v6.x/stable-review/patch-6.12.68-rc1.gz
or in the git tree and branch at:
	git://git.kernel.org/pub/scm/linux/kernel/git/stable/linux-stable-rc.git linux-6.12.y
and the diffstat can be found below.

thanks,

greg k-h

-------------
Pseudo-Shortlog of commits:

Greg Kroah-Hartman <gregkh@linuxfoundation.org>
    Linux 6.12.68-rc1

Ryan Roberts <ryan.roberts@arm.com>
    mm: fix lazy mmu docs and usage

-------------

Diffstat:
"""

TESTED_REPLY = """\
From: Tester <tester@example.org>
Subject: Re: [PATCH 6.12 000/158] 6.12.40-rc1 review
Date: Thu, 24 Jul 2025 10:00:00 +0000
Message-ID: <reply-1@example.org>
In-Reply-To: <20250722134328.000000000@linuxfoundation.org>

On Tue, Jul 22, 2025 at 03:43:28PM +0200, Greg Kroah-Hartman wrote:
> This is the start of the stable review cycle for the 6.12.40 release.
> Tested-by: Quoted Person <q@example.org>

Builds and boots on arm64.

Tested-by: Tester <tester@example.org>
"""


def test_review_cover() -> None:
    rec = parse_stable_mail(mail(REVIEW_COVER))
    assert isinstance(rec, ReviewCover)
    assert (rec.branch, rec.release, rec.rc, rec.patch_count) == ("6.12", "6.12.68", 1, 169)
    assert rec.responses_by == datetime(2026, 1, 30, 14, 53, 2, tzinfo=UTC)
    assert rec.rc_tree_branch == "linux-6.12.y"
    assert [(e.author, e.subject) for e in rec.shortlog] == [
        ("Greg Kroah-Hartman <gregkh@linuxfoundation.org>", "Linux 6.12.68-rc1"),
        ("Ryan Roberts <ryan.roberts@arm.com>", "mm: fix lazy mmu docs and usage"),
    ]
    padded = mail(REVIEW_COVER.replace("000/169] 6.12.68-rc1", "0/3] 6.12.1-rc1"))
    small = parse_stable_mail(padded)
    assert isinstance(small, ReviewCover) and small.release == "6.12.1"


def test_tested_reply() -> None:
    rec = parse_stable_mail(mail(TESTED_REPLY))
    assert isinstance(rec, ReviewTested)
    assert (rec.branch, rec.release, rec.rc) == ("6.12", "6.12.40", 1)
    assert rec.tested_by == ("Tester <tester@example.org>",)  # the quoted one is not counted
    assert rec.cover_msgid == "20250722134328.000000000@linuxfoundation.org"


AUTOSEL = """\
From: Sasha Levin <sashal@kernel.org>
Subject: [PATCH AUTOSEL 6.12 03/10] rust: module: place cleanup_module() in .exit.text section
Date: Wed, 4 Jun 2025 09:00:00 -0400
Message-ID: <20250604130000.1-3-sashal@kernel.org>
X-stable: review
X-Patchwork-Hint: Ignore
X-stable-base: Linux 6.12.32

From: FUJITA Tomonori <fujita.tomonori@gmail.com>

[ Upstream commit 249c3a0e53acefc2b06d3b3e1fc28fb2081f878d ]

Place it in .exit.text.

Signed-off-by: Sasha Levin <sashal@kernel.org>
---

LLM Generated explanations, may be completely bogus:

**Backport Status: YES**

---
 rust/macros/module.rs | 1 +
 1 file changed, 1 insertion(+)

diff --git a/rust/macros/module.rs b/rust/macros/module.rs
index 1111111..2222222 100644
--- a/rust/macros/module.rs
+++ b/rust/macros/module.rs
@@ -1,2 +1,3 @@
 a
+b
 c
"""


def test_autosel() -> None:
    rec = parse_stable_mail(mail(AUTOSEL))
    assert isinstance(rec, AutoselPatch)
    assert (rec.branch, rec.index, rec.total) == ("6.12", 3, 10)
    assert rec.upstream == "249c3a0e53acefc2b06d3b3e1fc28fb2081f878d"
    assert rec.stable_base == "Linux 6.12.32"
    assert rec.llm_status == "YES"
    assert rec.author_email == "fujita.tomonori@gmail.com"
    assert rec.subject == "rust: module: place cleanup_module() in .exit.text section"
    assert rec.diff is not None and rec.diff.paths == ("rust/macros/module.rs",)


DROP_REQUEST = """\
From: Dev <dev@example.org>
Subject: Re: Patch "iio: dac: ad3552r: clear reset status flag" has been added to the 6.12-stable tree
Date: Mon, 10 Mar 2025 13:00:00 +0100
Message-ID: <drop-1@example.org>
In-Reply-To: <2025031049-afflicted-mangy-4da9@gregkh>

On Mon, Mar 10, 2025 at 12:00:49PM +0100, gregkh@linuxfoundation.org wrote:
> This is a note to let you know that I've just added the patch titled

Please drop this patch from all stable trees, it needs a prerequisite.
"""  # noqa: E501

NOW_DROPPED = """\
From: Greg KH <gregkh@linuxfoundation.org>
Subject: Re: Patch "iio: dac: ad3552r: clear reset status flag" has been added to the 6.12-stable tree
Date: Mon, 10 Mar 2025 14:00:00 +0100
Message-ID: <dropped-1@kroah.com>
In-Reply-To: <drop-1@example.org>

On Mon, Mar 10, 2025 at 01:00:00PM +0100, Dev wrote:
> Please drop this patch from all stable trees, it needs a prerequisite.

Now dropped, thanks.

greg k-h
"""  # noqa: E501


def test_drop_request_and_dropped() -> None:
    req = parse_stable_mail(mail(DROP_REQUEST))
    assert isinstance(req, DropRequest)
    assert (req.branch, req.patch_subject) == ("6.12", "iio: dac: ad3552r: clear reset status flag")
    assert req.parent_msgid == "2025031049-afflicted-mangy-4da9@gregkh"
    done = parse_stable_mail(mail(NOW_DROPPED))
    assert isinstance(done, Dropped)
    assert done.branch == "6.12" and done.parent_msgid == "drop-1@example.org"
    chatter = NOW_DROPPED.replace("Now dropped, thanks.", "Thanks for the report.")
    assert parse_stable_mail(mail(chatter)) is None


def test_backport_submission_6_1_y() -> None:
    text = (
        "From: Dev <dev@example.org>\nSubject: [PATCH 6.1.y] mm/vmalloc: leave lazy MMU mode on "
        "PTE mapping error\nMessage-ID: <bp@example.org>\n\n"
        "commit fea18c686320a53fce7ad62a87a3e1d10ad02f31 upstream.\n\nBody.\n"
    )
    rec = parse_stable_mail(mail(text))
    assert isinstance(rec, BackportSubmission)
    assert rec.branch == "6.1" and rec.upstream == "fea18c686320a53fce7ad62a87a3e1d10ad02f31"


# ------------------------------------------------------------------------------------------
# mm-commits and tip-commits


def test_mm_commits_rendered_text_sample() -> None:
    text = (SAMPLES / "mm-commits-added-mm-fix-lazy-mmu-docs-and-usage.txt").read_text()
    rec = parse_mm_commits_text(text)
    assert isinstance(rec, MmAdded)
    assert rec.kind == "mm-added"
    assert (rec.filename, rec.branch) == ("mm-fix-lazy-mmu-docs-and-usage.patch", "mm-unstable")
    assert rec.patch_subject == "mm: fix lazy mmu docs and usage"
    assert rec.cc_stable
    assert "sparc-mm-disable-preemption-in-lazy-mmu-mode.patch" in rec.related_patches
    patch = rec.patch
    assert patch is not None and patch.flattened and patch.diff is None
    assert (patch.author_name, patch.author_email) == ("Ryan Roberts", "ryan.roberts@arm.com")
    assert patch.date == datetime(2025, 3, 3, 14, 15, 35, tzinfo=UTC)
    assert [f.sha for f in patch.trailers.fixes] == ["bcc6cc832573"]
    assert patch.link_msgids == (
        "20250303141542.3371656-1-ryan.roberts@arm.com",
        "20250303141542.3371656-2-ryan.roberts@arm.com",
    )
    assert patch.trailers.cc_stable


def _quilt_of(mail_body: str, name: str) -> str:
    diff = parse_diff(mail_body)
    assert diff is not None
    out = []
    for line in diff.text.split("\n"):
        if line.startswith(("diff --git", "index ")):
            continue
        if line.startswith("--- a/"):
            line += "~" + name
        elif line.startswith("+++ b/"):
            line = "+++ a/" + line[6:]
        out.append(line)
    return "\n".join(out).rstrip("\n")


def _akpm_mail(subject: str, preamble: str, quilt: str) -> str:
    return f"""\
From: Andrew Morton <akpm@linux-foundation.org>
To: mm-commits@vger.kernel.org,stable@vger.kernel.org,ryan.roberts@arm.com
Subject: {subject}
Message-Id: <20250304000000.AAAA@smtp.kernel.org>
Date: Mon, 03 Mar 2025 16:00:00 -0800

{preamble}

------------------------------------------------------
From: Ryan Roberts <ryan.roberts@arm.com>
Subject: mm: fix lazy mmu docs and usage
Date: Mon, 3 Mar 2025 14:15:35 +0000

Patch series "Fix lazy mmu mode", v2.

Link: https://lkml.kernel.org/r/20250303141542.3371656-2-ryan.roberts@arm.com
Fixes: bcc6cc832573 ("mm: add default definition of set_ptes()")
Cc: <stable@vger.kernel.org>
Signed-off-by: Andrew Morton <akpm@linux-foundation.org>
---

 include/linux/pgtable.h |   14 ++++++++------
 1 file changed, 8 insertions(+), 6 deletions(-)

{quilt}
_

Patches currently in -mm which might be from ryan.roberts@arm.com are

mm-fix-lazy-mmu-docs-and-usage.patch
"""


ADDED_PREAMBLE = """\
The patch titled
     Subject: mm: fix lazy mmu docs and usage
has been added to the -mm mm-new branch.  Its filename is
     mm-fix-lazy-mmu-docs-and-usage.patch

This patch will shortly appear at
     https://git.kernel.org/pub/scm/linux/kernel/git/akpm/25-new.git/tree/patches/mm-fix-lazy-mmu-docs-and-usage.patch"""

REMOVED_PREAMBLE = """\
The quilt patch titled
     Subject: mm: fix lazy mmu docs and usage
has been removed from the -mm tree.  Its filename was
     mm-fix-lazy-mmu-docs-and-usage.patch

This patch was dropped because {reason}"""


def _v2_patch1_body() -> str:
    for m in mails("sparclinux_fix-lazy-mmu-mode_2025-03.mbox"):
        if (m.tags.version, m.tags.index, m.tags.is_reply) == (2, 1, False):
            return m.body
    raise AssertionError("v2 1/5 not found")


def test_mm_commits_added_mail_with_quilt_diff() -> None:
    quilt = _quilt_of(_v2_patch1_body(), "mm-fix-lazy-mmu-docs-and-usage")
    assert "+++ a/include/linux/pgtable.h" in quilt
    text = _akpm_mail(
        "+ mm-fix-lazy-mmu-docs-and-usage.patch added to mm-new branch", ADDED_PREAMBLE, quilt
    )
    rec = parse_mm_commits(mail(text))
    assert isinstance(rec, MmAdded)
    assert (rec.filename, rec.branch, rec.cc_stable) == (
        "mm-fix-lazy-mmu-docs-and-usage.patch",
        "mm-new",
        True,
    )
    assert rec.msgid == "20250304000000.AAAA@smtp.kernel.org"
    patch = rec.patch
    assert patch is not None and not patch.flattened
    assert patch.subject == "mm: fix lazy mmu docs and usage"
    assert patch.link_msgids == ("20250303141542.3371656-2-ryan.roberts@arm.com",)
    assert [f.sha for f in patch.trailers.fixes] == ["bcc6cc832573"]
    assert patch.diff is not None and patch.diff.form == "quilt"
    assert patch.diff.paths == ("include/linux/pgtable.h",)
    # Same id as the lore mail (git form) and the 6.6.88 stable-queue file (plain form).
    assert patch.patch_id == "1bf2385a5d724e57ae8948a6143633a3eaf4e798"
    assert rec.related_patches == ("mm-fix-lazy-mmu-docs-and-usage.patch",)


@pytest.mark.parametrize(
    "tag,reason,state,merged_into",
    [
        (
            "merged mm-stable",
            "it was merged into the mm-stable branch\nof git://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm",
            "mm-stable",
            "mm-stable",
        ),
        (
            "merged mm-hotfixes-stable",
            "it was merged into the mm-hotfixes-stable branch\nof git://x",
            "mm-hotfixes-stable",
            "mm-hotfixes-stable",
        ),
        ("to-be-updated", "an updated version will be issued", "to-be-updated", None),
        ("withdrawn", "it was withdrawn", "withdrawn", None),
        ("something-new", "reasons", "dropped", None),
    ],
)
def test_mm_commits_removed(tag: str, reason: str, state: str, merged_into: str | None) -> None:
    quilt = _quilt_of(_v2_patch1_body(), "mm-fix-lazy-mmu-docs-and-usage")
    text = _akpm_mail(
        f"[{tag}] mm-fix-lazy-mmu-docs-and-usage.patch removed from -mm tree",
        REMOVED_PREAMBLE.format(reason=reason),
        quilt,
    )
    rec = parse_mm_commits(mail(text))
    assert isinstance(rec, MmRemoved)
    assert rec.kind == "mm-removed"
    assert (rec.reason_tag, rec.state, rec.merged_into) == (tag, state, merged_into)
    assert rec.filename == "mm-fix-lazy-mmu-docs-and-usage.patch"
    assert rec.patch_subject == "mm: fix lazy mmu docs and usage"
    assert rec.patch is not None
    assert rec.patch.patch_id == "1bf2385a5d724e57ae8948a6143633a3eaf4e798"


def test_mm_commits_ignores_other_mail() -> None:
    assert parse_mm_commits(mail(REVIEW_COVER)) is None
    assert parse_mm_commits_text("nothing to see") is None


def test_tip_commits_mbox() -> None:
    recs = [parse_tip_commit(m) for m in mails("tip-commits_tlb-lazy-hugetlb_notifications.mbox")]
    assert len(recs) == 102 and all(r is not None for r in recs)
    tips = [r for r in recs if r is not None]
    assert all(r.sha is not None and r.diff is not None and r.diff.patch_id for r in tips)
    first = tips[0]
    assert (first.branch, first.sha) == ("x86/mm", "77df779de742d6616d4ddd177cba152a75259104")
    assert first.subject == "x86/cpu: Clean up intel_tlb_table[]"
    by_sha = {r.sha: r for r in tips}
    text_poke = by_sha["abee7c494d8c41bb388839bccc47e06247f0d7de"]
    assert text_poke.branch == "x86/urgent"
    assert [f.sha for f in text_poke.trailers.fixes] == ["cefa929c034eb5d"]
    perf = by_sha["28396b7df09b9565f404591c9945eac43526cb3f"]
    assert perf.committer_date == datetime(
        2019, 12, 16, 13, 40, 26, tzinfo=timezone(timedelta(hours=-3))
    )
    # One change committed three times in tip (rebased): three shas, one patch-id.
    revert = [
        by_sha[s].diff.patch_id  # type: ignore[union-attr]
        for s in (
            "3ee646cd23a26ddf92b3ecf6e0ddc2d4d620189b",
            "e1300d97cbc347d319adfa0976be723ada4b582c",
            "d39268ad24c0fd0665d0c5cf55a7c1a0ebf94766",
        )
    ]
    assert len(set(revert)) == 1
    assert parse_tip_commit(mail(REVIEW_COVER)) is None


# ------------------------------------------------------------------------------------------
# Atom


def test_cgit_atom_sample() -> None:
    data = (SAMPLES / "cgit-atom-tlb-h-v6.12.80.xml").read_bytes()
    feed = parse_feed(data)
    assert feed.kind == "cgit" and feed.skipped == 0
    assert feed.title == "kernel/linux.git/include/asm-generic/tlb.h, branch v6.12.80"
    entries = feed.commit_entries
    assert len(entries) == 10
    top = entries[0]
    assert top.sha == "da06bb0ca45b1ca6f1ab55023e34e61a520337f3"
    assert top.subject.startswith("mm/hugetlb: fix excessive IPI broadcasts")
    assert top.author_email == "david@kernel.org"
    assert top.updated == datetime(2026, 2, 19, 15, 29, 55, tzinfo=UTC)
    assert top.published == datetime(2025, 12, 23, 21, 40, 37, tzinfo=UTC)
    assert top.trailers.upstream == "8ce720d5bd91e9dc16db3604aa4b1bf76770a9a1"
    assert [f.sha for f in top.trailers.fixes] == ["1013af4f585f"]
    assert "20251223214037.580860-5-david@kernel.org" in top.trailers.link_msgids
    assert "(> 2 users including us)" in top.body  # &gt; decoded
    assert top.message.startswith(top.subject + "\n\ncommit 8ce720d5bd91")
    khugepaged = entries[8]
    assert khugepaged.sha == "2ba99c5e08812494bc57f319fb562f527d9bacd8"
    assert [f.sha for f in khugepaged.trailers.fixes] == ["ba76149f47d8"]
    assert parse_cgit_atom(data) == entries


PUBLIC_INBOX_ATOM = b"""<?xml version="1.0" encoding="us-ascii"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
<title>linux-mm</title><link rel="alternate" type="text/html" href="https://lore.kernel.org/linux-mm/"/>
<link rel="self" href="https://lore.kernel.org/linux-mm/new.atom"/><id>mailto:linux-mm@kvack.org</id>
<updated>2025-03-03T14:15:39Z</updated>
<entry><author><name>Ryan Roberts</name><email>ryan.roberts@arm.com</email></author>
<title>[PATCH v2 1/5] mm: Fix lazy mmu docs and usage</title><updated>2025-03-03T14:15:35Z</updated>
<link href="https://lore.kernel.org/linux-mm/20250303141542.3371656-2-ryan.roberts@arm.com/"/>
<id>urn:uuid:6f1f0a2e-0000-0000-0000-000000000000</id>
<thr:in-reply-to ref="urn:uuid:1" href="https://lore.kernel.org/linux-mm/20250303141542.3371656-1-ryan.roberts@arm.com/"/>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><pre style="white-space:pre-wrap">Fixes: bcc6cc832573 (&quot;mm: add&quot;) &amp; more &lt;ok&gt;&nbsp;</pre></div></content></entry>
<entry><author><name>X</name><email>x@y</email></author><title>odd id</title>
<updated>2025-03-03T15:00:00+01:00</updated>
<link href="https://lore.kernel.org/all/abc%2Fdef%40host.example/"/><id>urn:uuid:2</id></entry>
</feed>
"""  # noqa: E501


def test_public_inbox_atom() -> None:
    feed = parse_feed(PUBLIC_INBOX_ATOM)
    assert feed.kind == "public-inbox"
    assert feed.self_url == "https://lore.kernel.org/linux-mm/new.atom"
    first, second = parse_public_inbox_atom(PUBLIC_INBOX_ATOM)
    assert first.msgid == "20250303141542.3371656-2-ryan.roberts@arm.com"
    assert first.in_reply_to == "20250303141542.3371656-1-ryan.roberts@arm.com"
    assert first.title == "[PATCH v2 1/5] mm: Fix lazy mmu docs and usage"
    assert first.author_email == "ryan.roberts@arm.com"
    assert first.updated == datetime(2025, 3, 3, 14, 15, 35, tzinfo=UTC)
    assert first.body == 'Fixes: bcc6cc832573 ("mm: add") & more <ok>\u00a0'
    assert second.msgid == "abc/def@host.example"
    assert second.in_reply_to is None
    assert second.updated == datetime(2025, 3, 3, 14, 0, tzinfo=UTC)


def test_cgit_xhtml_only_and_bare_sha() -> None:
    data = b"""<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title>
<entry><title>x: fix</title><id>0123456789abcdef0123456789abcdef01234567</id>
<content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><pre>commit <b>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</b> upstream.

Fixes: 0123456789ab (&quot;y&quot;)</pre></div></content></entry>
<entry><title>no sha</title><id>urn:sha1:nothex</id></entry></feed>"""  # noqa: E501
    feed = parse_feed(data)
    assert feed.kind == "cgit" and feed.skipped == 1
    (entry,) = feed.commit_entries
    assert entry.sha == "0123456789abcdef0123456789abcdef01234567"
    assert entry.trailers.upstream == "a" * 40
    assert [f.sha for f in entry.trailers.fixes] == ["0123456789ab"]


@pytest.mark.parametrize(
    "data,message",
    [
        (b"<!DOCTYPE html><html><body>nope</body></html>", "DOCTYPE"),
        (b"<html><body>rate limited</body></html>", "got HTML"),
        (b"not xml at all", "not well-formed"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><feed/>', "DOCTYPE"),
        (b"<rss version='2.0'><channel/></rss>", "expected an Atom <feed>"),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'><entry>", "not well-formed"),
        ("unicode".encode("utf-16"), "not well-formed"),
    ],
)
def test_bad_feeds(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_feed(data)


def test_public_inbox_parser_refuses_cgit_feed() -> None:
    with pytest.raises(SourceError, match="cgit"):
        parse_public_inbox_atom((SAMPLES / "cgit-atom-tlb-h-v6.12.80.xml").read_bytes())


@pytest.mark.parametrize(
    "url,msgid",
    [
        ("https://lore.kernel.org/linux-mm/a.b@c/", "a.b@c"),
        ("https://lore.kernel.org/all/a%2Fb@c/T/#u", "a/b@c"),
        ("https://lore.kernel.org/linux-mm/", None),
        ("not a url", None),
    ],
)
def test_msgid_from_url(url: str, msgid: str | None) -> None:
    assert msgid_from_url(url) == msgid


# ------------------------------------------------------------------------------------------
# Archive pages


def test_pipermail_sample() -> None:
    page = parse_archive_text(
        (SAMPLES / "pipermail-arm64-ensure-lazy-mmu-never-nests.txt").read_text()
    )
    assert page.kind == "pipermail"
    assert page.subject == "[PATCH v1] arm64/mm: Ensure lazy_mmu_mode never nests"
    assert page.tags is not None and page.tags.version == 1
    assert (page.author_name, page.author_email) == ("Ryan Roberts", "ryan.roberts@arm.com")
    assert page.date == datetime(2025, 6, 6, 13, 56, 52, tzinfo=UTC)
    assert page.msgid is None
    assert page.quoted == "" and page.attributions == ()
    assert page.message.startswith('Commit 1ef3095b1405 ("arm64/mm: Permit lazy_mmu_mode')
    assert "More information about" not in page.body
    assert page.diff is not None and page.diff.complete
    assert page.diff.paths == ("arch/arm64/include/asm/pgtable.h", "arch/arm64/mm/pageattr.c")


def test_xen_archive_sample() -> None:
    page = parse_archive_text((SAMPLES / "xen-archive-reply-lazy-mmu-fixes-rfc.txt").read_text())
    assert page.kind == "mhonarc"
    assert page.subject == "Re: [RFC PATCH v1 0/6] Lazy mmu mode fixes and improvements"
    assert page.tags is not None and page.tags.is_reply and page.tags.total == 6
    assert page.attributions == ("Mike Rapoport",)
    assert page.new_text.startswith("Hi Mike,\n\nI've thought about this for a bit")
    assert page.new_text.endswith("Thanks,\nRyan")
    assert page.quoted.startswith("Hi Ryan,")
    assert "> On 30/05/2025 15:47, Lorenzo Stoakes wrote:" in page.quoted
    assert "Rackspace" not in page.body and "[Date Prev]" not in page.body
    assert page.diff is None


def test_mhonarc_header_block_and_msgid() -> None:
    page = parse_archive_text(
        "[Date Prev][Date Next][Thread Prev][Thread Next]\n\nRe: [PATCH] x\n\n"
        "From: Jan <jan at example.org>\nDate: Tue, 3 Jun 2025 10:00:00 +0200\n"
        "Message-id: <m1@example.org>\nIn-reply-to: <m0@example.org>\n\nHello\n"
    )
    assert page.kind == "mhonarc"
    assert (page.author_name, page.author_email) == ("Jan", "jan@example.org")
    assert (page.msgid, page.in_reply_to) == ("m1@example.org", "m0@example.org")
    assert page.new_text == "Hello"


def test_split_quotes() -> None:
    new, quoted, names = split_quotes("On Mon, A B wrote:\n> q1\n>> q2\nmine\n")
    assert (new, quoted, names) == ("mine", "q1\n> q2", ("A B",))
