"""The dashboard's sections: under which heading each fix of a branch is shown.

A branch's items are its plan steps plus the changes other branches plan that this branch has in
its base already. Each item lands in the first section whose test it passes, so the sections
partition the branch. Action sections (what a maintainer has to do something about) are listed
item by item on the overview; the others are only counted there. Every section has its own pages.

Adding a section is one :class:`Section` in :data:`SECTIONS`: its place in the tuple is both the
order it is tested in and the order it is shown in (action sections first, then the counted
ones). A status no section claims still gets a counted section of its own (:func:`group`), so a
new plan status is never dropped from the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tracker.decide import (
    ACTIONABLE,
    FAILED,
    IN_BRANCH,
    NEEDED,
    NOMINATED,
    NOT_NEEDED,
    PENDING_UPSTREAM,
    PREREQUISITE,
    QUEUED,
    RELEASED,
    REVERTED,
    UNRESOLVED,
)

# Not plan statuses: a branch's plan leaves out what its base release has already, and commits
# that are no fix candidate on it (a prerequisite another branch plans). The change pages call
# these "in base", or "present"/"absent" as ``tracker status`` does.
IN_BASE = "in base"
PRESENT = "present"
ABSENT = "absent"


@dataclass(frozen=True)
class Item:
    """One change as one branch sees it, with what the section tests and the pages show."""

    sha: str
    subject: str
    status: str
    reason: str
    evidence: tuple[str, ...] = ()
    position: int | None = None
    # The simulator's stored verdict on this branch ("clean", "blocked", ...), None if never run.
    verdict: str | None = None
    topics: tuple[str, ...] = ()
    stable_sha: str | None = None
    release: str | None = None


@dataclass(frozen=True)
class Section:
    key: str  # in page names and CSS classes: [a-z-]
    title: str
    about: str  # one sentence under the heading
    action: bool  # listed on the overview; otherwise only counted there
    test: Callable[[Item], bool]


def status_is(*statuses: str) -> Callable[[Item], bool]:
    return lambda item: item.status in statuses


def simulated_as(*verdicts: str) -> Callable[[Item], bool]:
    """Still to backport, and the simulator said this about it on the branch."""
    return lambda item: item.status in ACTIONABLE and item.verdict in verdicts


SECTIONS: tuple[Section, ...] = (
    Section(
        "failed",
        "Failed in stable",
        "The stable team reported that the patch failed to apply to this series.",
        True,
        status_is(FAILED),
    ),
    Section(
        "blocked",
        "Blocked",
        "Conflicts on lines an earlier step of the plan changes, and that step did not apply.",
        True,
        simulated_as("blocked"),
    ),
    Section(
        "manual",
        "Manual backport",
        "Does not apply to the branch: resolve the conflict by hand or apply the named "
        "prerequisites first.",
        True,
        simulated_as("manual", "conflict"),
    ),
    # Tested before "needed": a step the simulator found in the tree already needs no work.
    Section(
        "already-present",
        "Already present",
        "Planned, but the simulator found the change in the branch's tree already.",
        False,
        simulated_as("already-present"),
    ),
    Section(
        "needed",
        "Needed",
        "To backport, in plan order: applies cleanly or not simulated yet.",
        True,
        status_is(NEEDED, PREREQUISITE, NOMINATED),
    ),
    Section(
        "pending-upstream",
        "Pending upstream",
        "Fixes for commits in this branch that are not in mainline yet (-mm or a list).",
        True,
        status_is(PENDING_UPSTREAM),
    ),
    Section(
        "unresolved",
        "Unresolved Fixes:",
        "The Fixes: tag names no known commit: check by hand whether the branch needs it.",
        True,
        status_is(UNRESOLVED),
    ),
    Section(
        "queued",
        "Queued",
        "The stable team has queued or is reviewing it for this series.",
        False,
        status_is(QUEUED),
    ),
    Section(
        "in-branch",
        "In branch, unreleased",
        "Backported, not yet in a stable release.",
        False,
        status_is(IN_BRANCH),
    ),
    Section("released", "Released", "Backported and released.", False, status_is(RELEASED)),
    Section(
        "reverted",
        "Reverted",
        "Backported, then reverted on the branch.",
        False,
        status_is(REVERTED),
    ),
    Section(
        "not-needed",
        "Not needed",
        "What it fixes is not in the branch, or its Cc: stable excludes the branch.",
        False,
        status_is(NOT_NEEDED),
    ),
    Section(
        "in-base",
        "In base",
        "Released in mainline at or before the branch's base release.",
        False,
        status_is(IN_BASE),
    ),
    Section(
        "present",
        "Present otherwise",
        "Another branch plans it; this one is not a candidate for it and has it already.",
        False,
        status_is(PRESENT),
    ),
    Section(
        "absent",
        "Not a candidate",
        "Another branch plans it; here it is no fix after the base release (see why).",
        False,
        status_is(ABSENT),
    ),
)


@dataclass
class Group:
    section: Section
    items: list[Item]


def _fallback(status: str) -> Section:
    # Prefixed: a plan status must not take the page names of a known section.
    key = "other-" + "".join(ch if ch.isalnum() else "-" for ch in status.lower())
    return Section(key, status, f"Status {status!r}.", False, status_is(status))


def group(items: Iterable[Item], sections: Sequence[Section] = SECTIONS) -> list[Group]:
    """Every section (empty ones too) with its items in the order given, action sections first.

    Statuses no section claims get a counted section each, after the known ones.
    """
    groups = {s.key: Group(s, []) for s in sections}
    extra: dict[str, Group] = {}
    for item in items:
        sec = next((s for s in sections if s.test(item)), None)
        if sec is None:
            sec = extra.setdefault(item.status, Group(_fallback(item.status), [])).section
            extra[item.status].items.append(item)
        else:
            groups[sec.key].items.append(item)
    ordered = list(groups.values()) + list(extra.values())
    return [g for g in ordered if g.section.action] + [g for g in ordered if not g.section.action]
