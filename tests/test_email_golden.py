"""Golden mails built from the sample world, read back by git and by tracker's own parsers.

UPDATE_GOLDEN=1 rewrites tests/data/golden/*.mbox after an intended change (review the diff).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from tests.conftest import Synced
from tracker import usecases
from tracker.ingest.stablemail import (
    BackportSubmission,
    FailedToApply,
    ReviewCover,
    ReviewPatch,
    parse_stable_mail,
)
from tracker.parse.mail import parse_mail
from tracker.report.email import MailSettings, OutgoingMail, mbox_bytes
from tracker.report.mails import (
    MailContext,
    backport_mails,
    failed_mail,
    review_series,
)
from tracker.report.render import Renderer
from tracker.store.models import Branch, BranchState
from tracker.usecases import digest_mails

GOLDEN = Path(__file__).parent / "data" / "golden"
CLOCK = datetime(2026, 1, 28, 14, 53, 2, tzinfo=UTC)


def mail_context(synced: Synced) -> MailContext:
    counter = itertools.count(1)
    settings = MailSettings.from_config(
        synced.config.email,
        clock=lambda: CLOCK,
        make_id=lambda: f"<20260128145302.{next(counter)}@tracker.test>",
    )
    return MailContext(synced.config, synced.store, Renderer(None), settings)


def check_golden(name: str, mails: list[OutgoingMail]) -> bytes:
    data = mbox_bytes(mails)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_bytes(data)
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert data.decode() == path.read_text(encoding="utf-8")
    return data


def _strip_tags(subject: str) -> str:
    return re.sub(r"^(\s*\[[^\]]*\])+\s*", "", subject)


def mailinfo_roundtrip(tmp: Path, data: bytes, mails: list[OutgoingMail]) -> None:
    """git mailsplit + git mailinfo give back each mail's subject, author and body."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "all.mbox").write_bytes(data)
    split = subprocess.run(
        ["git", "mailsplit", "--mboxrd", f"-o{tmp}", str(tmp / "all.mbox")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert split.stdout.strip() == str(len(mails))
    for i, m in enumerate(mails, start=1):
        with (tmp / f"{i:04d}").open("rb") as fh:
            info = subprocess.run(
                ["git", "mailinfo", str(tmp / "msg"), str(tmp / "patch")],
                stdin=fh,
                capture_output=True,
                check=True,
                cwd=tmp,
            ).stdout.decode()
        fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
        body = m.body
        author = m.sender
        in_body = re.match(r"From: (.+)\n\n", body)
        if in_body:
            author, body = in_body.group(1), body[in_body.end() :]
        name, _, addr = author.rpartition(" <")
        assert fields["Subject"] == _strip_tags(m.subject)
        assert fields["Author"] == name
        assert fields["Email"] == addr.rstrip(">")
        msg = (tmp / "msg").read_text()
        patch = (tmp / "patch").read_text()
        # mailinfo cuts the body where the patch starts and drops the blank lines between.
        whole, head, tail = body.rstrip("\n"), msg.rstrip("\n"), patch.rstrip("\n")
        assert whole.startswith(head) and whole.endswith(tail)
        assert whole[len(head) : len(whole) - len(tail)].strip() == ""


def test_review_series_golden(synced_ro: Synced, tmp_path: Path) -> None:
    mails = review_series(mail_context(synced_ro), "linux-6.12.y")
    data = check_golden("review-6.12.mbox", mails)
    s = synced_ro.world.shas
    assert [m.subject for m in mails] == [
        "[PATCH 6.12 0/2] 6.12.25-rc1 review",
        "[PATCH 6.12 1/2] mm/vmalloc: leave lazy MMU mode on PTE mapping error",
        "[PATCH 6.12 2/2] mm/hugetlb: unshare page tables during VMA split, not before",
    ]
    cover = mails[0]
    assert all(m.in_reply_to == cover.message_id for m in mails[1:])
    assert all(m.references == (cover.message_id,) for m in mails[1:])
    assert f"[ Upstream commit {s['VM_FIX']} ]" in mails[1].body
    # The backport that lost its reference (found by patch-id) still names its upstream commit.
    assert f"[ Upstream commit {s['H2']} ]" in mails[2].body
    assert "commit " + s["VM_FIX"] + " upstream." not in mails[1].body
    mailinfo_roundtrip(tmp_path, data, mails)
    parsed = [parse_stable_mail(parse_mail(m.as_bytes())) for m in mails]
    assert isinstance(parsed[0], ReviewCover)
    assert (parsed[0].release, parsed[0].rc, parsed[0].patch_count) == ("6.12.25", 1, 2)
    assert isinstance(parsed[1], ReviewPatch) and isinstance(parsed[2], ReviewPatch)
    assert parsed[1].upstream == s["VM_FIX"] and parsed[2].upstream == s["H2"]
    assert parsed[1].cover_msgid == cover.message_id.strip("<>")


def test_failed_golden(synced_ro: Synced, tmp_path: Path) -> None:
    s = synced_ro.world.shas
    mail = failed_mail(mail_context(synced_ro), "linux-6.1.y", s["VM_FIX"], [s["VM_PREREQ"]])
    data = check_golden("failed-6.1.mbox", [mail])
    assert mail.subject == (
        'FAILED: patch "[PATCH] mm/vmalloc: leave lazy MMU mode on PTE mapping error" '
        "failed to apply to 6.1-stable tree"
    )
    mailinfo_roundtrip(tmp_path, data, [mail])
    parsed = parse_stable_mail(parse_mail(mail.as_bytes()))
    assert isinstance(parsed, FailedToApply)
    assert parsed.branch == "6.1" and parsed.sha == s["VM_FIX"] and parsed.form == "greg"
    # "Possible dependencies" starts with the failing commit, then the verified prerequisites.
    assert [d.sha for d in parsed.dependencies] == [s["VM_FIX"][:12], s["VM_PREREQ"][:12]]
    assert parsed.reply_to == mail.message_id.strip("<>")
    assert parsed.patch is not None and parsed.patch.sha == s["VM_FIX"]


def test_backport_golden_and_git_am(synced_ro: Synced, tmp_path: Path) -> None:
    s = synced_ro.world.shas
    mails = backport_mails(
        mail_context(synced_ro),
        "linux-6.1.y",
        s["VM_FIX"],
        [s["VM_PREREQ"]],
        in_reply_to="<2024072938-roundworm-wagon-ec6b@example.org>",
    )
    data = check_golden("backport-6.1.mbox", mails)
    assert [m.subject for m in mails] == [
        "[PATCH 6.1.y 1/2] mm/vmalloc: use ptep_get() and check pfn validity when mapping pages",
        "[PATCH 6.1.y 2/2] mm/vmalloc: leave lazy MMU mode on PTE mapping error",
    ]
    assert mails[0].in_reply_to == "<2024072938-roundworm-wagon-ec6b@example.org>"
    assert mails[1].references == (mails[0].in_reply_to, mails[0].message_id)
    assert (
        f'Stable-dep-of: {s["VM_FIX"][:12]} ("mm/vmalloc: leave lazy MMU mode on PTE mapping '
        'error")' in mails[0].body
    )
    assert f"commit {s['VM_FIX']} upstream." in mails[1].body
    mailinfo_roundtrip(tmp_path / "mi", data, mails)
    for m in mails:
        parsed = parse_stable_mail(parse_mail(m.as_bytes()))
        assert isinstance(parsed, BackportSubmission) and parsed.branch == "6.1"
    # git am takes the mbox as it is, onto the branch it is for.
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "-b", "linux-6.1.y", str(synced_ro.world.path), str(clone)],
        check=True,
    )
    (tmp_path / "bp.mbox").write_bytes(data)
    subprocess.run(["git", "-C", str(clone), "am", "-q", str(tmp_path / "bp.mbox")], check=True)
    log = subprocess.run(
        ["git", "-C", str(clone), "log", "-2", "--format=%an|%s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log == [
        "Alex Gordon|mm/vmalloc: leave lazy MMU mode on PTE mapping error",
        "Andy Mortimer|mm/vmalloc: use ptep_get() and check pfn validity when mapping pages",
    ]


def test_digest_golden(synced_ro: Synced, tmp_path: Path) -> None:
    mails = digest_mails(mail_context(synced_ro))
    data = check_golden("digest.mbox", mails)
    assert [m.subject for m in mails] == [
        "[tracker] lazy-mmu: 8 fixes to backport",
        "[tracker] mmu_gather: 7 fixes to backport",
        "[tracker] hugetlb: 12 fixes to backport",
    ]
    mailinfo_roundtrip(tmp_path, data, mails)


def test_failed_uses_stored_simulation(synced: Synced) -> None:
    """Without --prerequisite, the simulator's verified prerequisites are listed."""
    s = synced.world.shas
    usecases.plan(synced.config, synced.store, "linux-6.1.y")
    verdict = {
        "verdict": "clean",
        "prerequisites": {"found": True, "commits": [s["VM_PREREQ"], s["VM_FIX"]]},
    }
    with synced.store.session() as sess:
        bid = sess.scalar(select(Branch.id).where(Branch.name == "linux-6.1.y"))
        row = sess.get(BranchState, (bid, s["VM_FIX"]))
        assert row is not None
        row.simulation = json.dumps(verdict)
    mail = failed_mail(mail_context(synced), "linux-6.1.y", s["VM_FIX"][:12])
    deps = mail.body.split("Possible dependencies:\n\n", 1)[1].split("\n\nthanks,", 1)[0]
    assert deps.splitlines() == [
        f'{s["VM_FIX"][:12]} ("mm/vmalloc: leave lazy MMU mode on PTE mapping error")',
        f'{s["VM_PREREQ"][:12]} ("mm/vmalloc: use ptep_get() and check pfn validity when '
        'mapping pages")',
    ]
    # No simulation and no --prerequisite: the list is empty, as in the 2025 mails.
    plain = failed_mail(mail_context(synced), "linux-6.6.y", s["VM_FIX"])
    assert "Possible dependencies:\n\n\nthanks," in plain.body
