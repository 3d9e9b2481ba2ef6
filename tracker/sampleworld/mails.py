"""Mails of the sample world, in the shapes of shared/formats.md, written as an mbox.

They give the demo the statuses only mail can tell: a fix queued for 6.6-stable, a FAILED
mail for 6.1-stable, a fix still in -mm (pending upstream) with its list posting, and the list
posting of a fix that is in mainline (linked to its commit by ``Link:``), and a two-patch series
whose patches are linked to their commits by patch-id (it orders them in the plans).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tracker.sampleworld.history import AKPM, GREG, JANN, SampleWorld

PENDING_MSGID = "20251201101010.1234567-1-jan@example.org"
PENDING_FILE = "mm-hugetlb-fix-pmd-unshare-refcount-underflow.patch"
PENDING_SUBJECT = "mm/hugetlb: fix PMD unshare refcount underflow"

_PENDING_DIFF = """\
--- a/mm/hugetlb.c~{name}
+++ a/mm/hugetlb.c
@@ -1,4 +1,5 @@
 // SPDX-License-Identifier: GPL-2.0-only
+/* PMD sharing: the shared count must never drop below zero. */
 /*
  * Generic hugetlb support.
  */
_
"""


def _mail(headers: dict[str, str], body: str, sha: str = "") -> str:
    head = "".join(f"{k}: {v}\n" for k, v in headers.items())
    first = f"From {sha or 'mboxrd@z'} Thu Jan  1 00:00:00 1970\n"
    escaped = "\n".join(">" + ln if ln.startswith("From ") else ln for ln in body.split("\n"))
    return first + head + "\n" + escaped.rstrip("\n") + "\n\n"


def _git(world: SampleWorld, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=world.path, capture_output=True, text=True, check=True
    ).stdout


def queued_mail(world: SampleWorld) -> str:
    sha = world.shas["H4"]
    subject = _git(world, "log", "-1", "--format=%s", sha).strip()
    message = _git(world, "log", "-1", "--format=%b", sha).strip()
    patch = _git(world, "show", "--format=", sha)
    body = f"""This is a note to let you know that I've just added the patch titled

    {subject}

to the 6.6-stable tree which can be found at:
    http://www.kernel.org/git/?p=linux/kernel/git/stable/stable-queue.git;a=summary

The filename of the patch is:
     mm-hugetlb-fix-copy_hugetlb_page_range-to-use-pt_share_count.patch
and it can be found in the queue-6.6 subdirectory.

If you, or anyone else, feels it should not be added to the stable tree,
please let <stable@vger.kernel.org> know about it.


From {sha} Mon Sep 17 00:00:00 2001
From: {JANN.ident}
Date: Sat, 1 Nov 2025 10:00:00 +0000
Subject: {subject}

From: {JANN.ident}

commit {sha} upstream.

{message}
Signed-off-by: {GREG.ident}
---
{patch}
"""
    return _mail(
        {
            "From": GREG.ident,
            "To": f"{JANN.email},stable@vger.kernel.org",
            "Cc": "<stable-commits@vger.kernel.org>",
            "Subject": f'Patch "{subject}" has been added to the 6.6-stable tree',
            "Date": "Mon, 10 Nov 2025 10:00:00 +0100",
            "Message-ID": "<2025111010-sample-queued-h4@gregor>",
            "X-stable": "commit",
            "X-Patchwork-Hint": "ignore",
        },
        body,
    )


def failed_mail(world: SampleWorld) -> str:
    sha = world.shas["VM_FIX"]
    subject = _git(world, "log", "-1", "--format=%s", sha).strip()
    original = _git(world, "format-patch", "-1", "--stdout", sha)
    msgid = "2025072210-sample-failed-vmfix@gregor"
    send = (
        f"git send-email --to '<stable@vger.kernel.org>' --in-reply-to '{msgid}' "
        "--subject-prefix 'PATCH 6.1.y' HEAD^.."
    )
    body = f"""The patch below does not apply to the 6.1-stable tree.
If someone wants it applied there, or to any other stable or longterm
tree, then please email the backport, including the original git commit
id to <stable@vger.kernel.org>.

To reproduce the conflict and resubmit, you may use the following commands:

git fetch https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git/ linux-6.1.y
git checkout FETCH_HEAD
git cherry-pick -x {sha}
# <resolve conflicts, build, test, etc.>
git commit -s
{send}

Possible dependencies:



thanks,

greg k-h

------------------ original commit in Linus's tree ------------------

{original}"""
    return _mail(
        {
            "From": GREG.ident,
            "To": "alex@example.org,stable@vger.kernel.org",
            "Cc": "<stable@vger.kernel.org>",
            "Subject": (f'FAILED: patch "[PATCH] {subject}" failed to apply to 6.1-stable tree'),
            "Date": "Tue, 22 Jul 2025 10:00:00 +0200",
            "Message-ID": f"<{msgid}>",
        },
        body,
    )


def _pending_message(world: SampleWorld) -> str:
    h1 = world.shas["H1"]
    h1_subject = _git(world, "log", "-1", "--format=%s", h1).strip()
    return (
        "Unsharing a PMD table could decrement the shared count of a table that was\n"
        "never shared, underflowing it.\n\n"
        f"Link: https://lkml.kernel.org/r/{PENDING_MSGID}\n"
        f'Fixes: {h1[:12]} ("{h1_subject}")\n'
        f"Signed-off-by: {JANN.ident}\n"
        "Cc: <stable@vger.kernel.org>\n"
        f"Signed-off-by: {AKPM.ident}\n"
    )


def mm_added_mail(world: SampleWorld) -> str:
    name = PENDING_FILE.removesuffix(".patch")
    body = f"""
The patch titled
     Subject: {PENDING_SUBJECT}
has been added to the -mm mm-hotfixes-unstable branch.  Its filename is
     {PENDING_FILE}

This patch will shortly appear at
     https://git.kernel.org/pub/scm/linux/kernel/git/akpm/25-new.git/tree/patches/{PENDING_FILE}

This patch will later appear in the mm-hotfixes-unstable branch at
    git://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm

Before you just go and hit "reply", please:
   a) Consider who else should be cc'ed
   b) Prefer to cc a suitable mailing list as well
   c) Ideally: find the original patch on the mailing list and do a
      reply-to-all to that, adding suitable additional cc's

*** Remember to use Documentation/process/submit-checklist.rst when testing your code ***

The -mm tree is included into linux-next via various branches at
git://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm
and is updated there most days

------------------------------------------------------
From: {JANN.ident}
Subject: {PENDING_SUBJECT}
Date: Mon, 1 Dec 2025 10:10:10 +0000

{_pending_message(world)}---

 mm/hugetlb.c |    1 +
 1 file changed, 1 insertion(+)

{_PENDING_DIFF.format(name=name)}
Patches currently in -mm which might be from jan@example.org are

{PENDING_FILE}
"""
    return _mail(
        {
            "From": AKPM.ident,
            "To": f"mm-commits@vger.kernel.org,stable@vger.kernel.org,{JANN.email}",
            "Subject": f"+ {PENDING_FILE} added to mm-hotfixes-unstable branch",
            "Date": "Tue, 02 Dec 2025 18:00:00 -0800",
            "Message-Id": "<20251203020000.SAMPLE01@smtp.kernel.org>",
        },
        body,
    )


def posting_mail(world: SampleWorld) -> str:
    """The list posting of the pending fix (what the -mm patch's Link: names)."""
    diff = "diff --git a/mm/hugetlb.c b/mm/hugetlb.c\n" + _PENDING_DIFF.format(name="x").replace(
        "a/mm/hugetlb.c~x", "a/mm/hugetlb.c"
    ).replace("+++ a/mm/hugetlb.c", "+++ b/mm/hugetlb.c").removesuffix("_\n")
    message = "\n".join(
        ln
        for ln in _pending_message(world).splitlines()
        if not ln.startswith(("Link:", f"Signed-off-by: {AKPM.name}"))
    )
    return _mail(
        {
            "From": JANN.ident,
            "To": "linux-mm@kvack.org",
            "Subject": f"[PATCH] {PENDING_SUBJECT}",
            "Date": "Mon, 1 Dec 2025 10:10:10 +0000",
            "Message-ID": f"<{PENDING_MSGID}>",
        },
        f"{message}\n---\n{diff}",
    )


SERIES_MSGID = "20250520-hugetlb-fixes-splitrace-v3-{}-jann@example.org"


def series_mails(world: SampleWorld) -> str:
    """Jann's two-patch hugetlb series (v3) as posted: it orders H2 and H3 in every plan."""
    cover = _mail(
        {
            "From": JANN.ident,
            "To": "akpm@example.org,linux-mm@kvack.org",
            "Subject": "[PATCH v3 0/2] mm/hugetlb: fixes for PMD table sharing",
            "Date": "Tue, 20 May 2025 19:00:00 +0200",
            "Message-ID": f"<{SERIES_MSGID.format(0)}>",
        },
        "Two fixes for hugetlb PMD table sharing; both are for stable.\n",
    )
    patches = []
    for index, role in ((1, "H2"), (2, "H3")):
        sha = world.shas[role]
        subject = _git(world, "log", "-1", "--format=%s", sha).strip()
        body = _git(world, "format-patch", "-1", "--stdout", "--no-signature", sha)
        patch = body.split("\n\n", 1)[1]
        patches.append(
            _mail(
                {
                    "From": JANN.ident,
                    "To": "akpm@example.org,linux-mm@kvack.org",
                    "Subject": f"[PATCH v3 {index}/2] {subject}",
                    "Date": f"Tue, 20 May 2025 19:0{index}:00 +0200",
                    "Message-ID": f"<{SERIES_MSGID.format(index)}>",
                    "In-Reply-To": f"<{SERIES_MSGID.format(0)}>",
                    "References": f"<{SERIES_MSGID.format(0)}>",
                },
                patch,
            )
        )
    return cover + "".join(patches)


def write_mails(world: SampleWorld, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in (
        ("stable-queued.mbox", queued_mail(world)),
        ("stable-failed.mbox", failed_mail(world)),
        ("mm-commits.mbox", mm_added_mail(world)),
        ("linux-mm.mbox", posting_mail(world)),
        ("linux-mm-series.mbox", series_mails(world)),
    ):
        path = directory / name
        path.write_text(text)
        out.append(path)
    return out
