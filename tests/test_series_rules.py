"""The grouping rules of tracker.ingest.series on plain values (no store): unthreaded patches,
partial re-rolls, resends, and what must stay apart."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tracker.ingest.series import Posted, group_postings, link_versions, postingish
from tracker.parse.mail import parse_subject

T0 = datetime(2025, 3, 2, 14, 0, tzinfo=UTC)
ME = "dev@example.org"


def mail(
    msgid: str,
    subject: str,
    minutes: float = 0,
    parent: str | None = None,
    kind: str = "patch",
    sender: str = ME,
) -> Posted:
    return Posted(
        msgid, sender, T0 + timedelta(minutes=minutes), parent, kind, parse_subject(subject)
    )


def _shape(msgs: list[Posted]) -> list[list[tuple[int, int, bool, list[str]]]]:
    plans = link_versions(group_postings(msgs), ME)
    return sorted(
        [(v.version, v.total, v.complete, sorted(m.msgid for m in v.members)) for v in p.versions]
        for p in plans
    )


def test_unthreaded_patches_close_in_time_are_one_posting() -> None:
    msgs = [
        mail("a2", "[PATCH v2 2/3] x: two", 1),
        mail("a1", "[PATCH v2 1/3] x: one", 0),
        mail("a3", "[PATCH v2 3/3] x: three", 2),
        # A 0/N with a diff of its own (a stat or a doc change) is still the cover.
        mail("c0", "[PATCH v2 0/3] x: fixes", -1, kind="patch"),
    ]
    assert _shape(msgs) == [[(2, 3, True, ["a1", "a2", "a3", "c0"])]]


def test_unthreaded_patches_far_apart_or_clashing_stay_apart() -> None:
    msgs = [
        mail("a1", "[PATCH 1/2] x: one", 0),
        mail("a2", "[PATCH 2/2] x: two", 1),
        # The same numbers again an hour later: another posting (a resend), not the same one.
        mail("b1", "[PATCH 1/2] y: other", 60),
        mail("b2", "[PATCH 2/2] y: other two", 61),
        # Two days later, a 1/2 alone does not join anything.
        mail("d1", "[PATCH 1/2] z: late", 60 * 48),
    ]
    shapes = _shape(msgs)
    assert sorted(len(v[0][3]) for v in shapes) == [1, 2, 2]
    # Different tags (RFC) are another posting even within the window.
    rfc = [mail("r1", "[PATCH RFC 1/2] x: one", 0), mail("r2", "[PATCH 2/2] x: two", 1)]
    assert len(_shape(rfc)) == 2


def test_partial_reroll_borrows_from_the_previous_version() -> None:
    msgs = [
        mail("v1c", "[PATCH 0/3] feature", 0, kind="cover"),
        mail("v1p1", "[PATCH 1/3] a: one", 1, "v1c"),
        mail("v1p2", "[PATCH 2/3] a: two", 2, "v1c"),
        mail("v1p3", "[PATCH 3/3] a: three", 3, "v1c"),
        # v2 of patch 2 only, posted into v1's thread.
        mail("v2p2", "[PATCH v2 2/3] a: two", 600, "v1p2"),
    ]
    assert _shape(msgs) == [[(1, 3, True, ["v1c", "v1p1", "v1p2", "v1p3"]), (2, 3, True, ["v2p2"])]]
    # The same patch posted on its own (not in v1's thread) is an incomplete v2.
    alone = [*msgs[:4], mail("x2", "[PATCH v2 2/3] a: two", 600)]
    assert _shape(alone)[0][1][2] is False


def test_resend_of_one_version_is_one_version() -> None:
    msgs = [
        mail("c", "[PATCH 0/2] feature", 0, kind="cover"),
        mail("p1", "[PATCH 1/2] a: one", 1, "c"),
        mail("rc", "[PATCH RESEND 0/2] feature", 60 * 24 * 7, kind="cover"),
        mail("rp1", "[PATCH RESEND 1/2] a: one", 60 * 24 * 7, "rc"),
        mail("rp2", "[PATCH RESEND 2/2] a: two", 60 * 24 * 7, "rc"),
    ]
    (series,) = link_versions(group_postings(msgs), ME)
    (v1,) = series.versions
    assert v1.complete and v1.root == "rc"  # the latest posting stands for the version
    assert {m.msgid for m in v1.members} == {"c", "p1", "rc", "rp1", "rp2"}


def test_versions_linked_by_a_patch_subject_when_the_cover_changed() -> None:
    msgs = [
        mail("c1", "[PATCH 0/2] Fix lazy mmu", 0, kind="cover"),
        mail("a1", "[PATCH 1/2] mm: fix docs", 1, "c1"),
        mail("a2", "[PATCH 2/2] sparc: fix it", 2, "c1"),
        mail("c2", "[PATCH v2 0/3] Fix lazy mmu mode", 900, kind="cover"),
        mail("b1", "[PATCH v2 1/3] mm: fix docs", 901, "c2"),
        # Another sender's series with the same patch subject is not linked.
        mail("o1", "[PATCH v2] mm: fix docs", 5, sender="other@example.org"),
    ]
    plans = link_versions(group_postings(msgs[:5]), ME)
    assert [[v.version for v in p.versions] for p in plans] == [[1, 2]]
    other = link_versions(group_postings(msgs[5:]), "other@example.org")
    assert [[v.version for v in p.versions] for p in other] == [[2]]


def test_b4_change_id_links_renamed_versions() -> None:
    a = mail("c4", "[PATCH v4 0/1] old name", 0, kind="cover")
    b = mail("c5", "[PATCH v5 0/1] new name", 900, kind="cover")
    assert len(link_versions(group_postings([a, b]), ME)) == 2
    a, b = replace(a, change_id="20250114-x-6a11"), replace(b, change_id="20250114-x-6a11")
    (series,) = link_versions(group_postings([a, b]), ME)
    assert [v.version for v in series.versions] == [4, 5]


def test_what_is_a_posting() -> None:
    assert postingish("patch", parse_subject("[RFC V2] mm: generalize notify_page_fault()"))
    assert postingish("mail", parse_subject("[PATCH v2] Implement close-on-fork"))
    # A stable-queue file: the patch, but never posted by its author as such.
    assert not postingish("patch", parse_subject("mm: fix lazy mmu docs and usage"))
    assert not postingish("mail", parse_subject("Re: [PATCH v2] Implement close-on-fork"))
