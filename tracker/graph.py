"""Resolve references as written (``Fixes: abc123 ("subject")``) to commits, with evidence.

Pure: lookups are passed in, so the rules are tested with plain values. A quoted subject is
evidence too: when it names a different commit than the sha does, the reference is repaired if
the subject is unambiguous, and flagged either way so a human can check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tracker.parse.trailers import HEX_RE


class Candidate(NamedTuple):  # made per commit a first sync's Fixes: could name
    sha: str
    subject: str
    mainline: bool


@dataclass(frozen=True)
class Resolution:
    dst: str | None
    rule: str
    evidence: str
    flagged: bool


PrefixLookup = Callable[[str], Sequence[Candidate]]
SubjectLookup = Callable[[str], Sequence[Candidate]]

_WS = re.compile(r"\s+")
_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|aw)\s*:\s*)+", re.IGNORECASE)
_TAG_PREFIX = re.compile(r"^\[[^\]]*\]\s*")


def normalise_subject(subject: str) -> str:
    s = _WS.sub(" ", subject.strip())
    s = _REPLY_PREFIX.sub("", s)
    s = _TAG_PREFIX.sub("", s)
    return s.strip().strip('"').lower()


def _by_subject(subject: str, by_subject: SubjectLookup) -> Candidate | None:
    """The one commit with this subject, preferring mainline over its stable backports."""
    cands = list(by_subject(subject))
    if len(cands) == 1:
        return cands[0]
    mainline = [c for c in cands if c.mainline]
    if len(mainline) == 1:
        return mainline[0]
    return None


def resolve_reference(
    raw_sha: str,
    quoted_subject: str | None,
    by_prefix: PrefixLookup,
    by_subject: SubjectLookup,
) -> Resolution:
    sha = raw_sha.strip().lower()
    if not HEX_RE.match(sha):
        if quoted_subject:
            hit = _by_subject(quoted_subject, by_subject)
            if hit:
                return Resolution(
                    hit.sha,
                    "subject-repair",
                    f"'{raw_sha}' is not a commit id; subject \"{quoted_subject}\" names "
                    f"{hit.sha[:12]}",
                    True,
                )
        return Resolution(None, "invalid", f"'{raw_sha}' is not a commit id", True)

    cands = list(by_prefix(sha))
    if len(cands) > 1:
        if quoted_subject:
            want = normalise_subject(quoted_subject)
            same = [c for c in cands if normalise_subject(c.subject) == want]
            if len(same) == 1:
                return Resolution(
                    same[0].sha,
                    "prefix+subject",
                    f"{sha} is ambiguous ({len(cands)} commits); the quoted subject picks "
                    f"{same[0].sha[:12]}",
                    True,
                )
        return Resolution(None, "ambiguous", f"{sha} matches {len(cands)} commits", True)

    if not cands:
        if quoted_subject:
            hit = _by_subject(quoted_subject, by_subject)
            if hit:
                return Resolution(
                    hit.sha,
                    "subject-repair",
                    f'{sha} is unknown; the quoted subject "{quoted_subject}" names {hit.sha[:12]}',
                    True,
                )
        return Resolution(None, "unknown", f"{sha} is not a known commit", True)

    found = cands[0]
    # Equal text normalises equally: the usual tag quotes the subject exactly.
    if (
        quoted_subject
        and quoted_subject != found.subject
        and normalise_subject(quoted_subject) != normalise_subject(found.subject)
    ):
        hit = _by_subject(quoted_subject, by_subject)
        if hit and hit.sha != found.sha:
            return Resolution(
                hit.sha,
                "subject-repair",
                f'{sha} is "{found.subject}" but the tag quotes "{quoted_subject}", '
                f"which is {hit.sha[:12]}",
                True,
            )
        return Resolution(
            found.sha,
            "sha-subject-mismatch",
            f'{sha} is "{found.subject}", not the quoted "{quoted_subject}"',
            True,
        )
    return Resolution(found.sha, "sha", f'{sha} is {found.sha[:12]} ("{found.subject}")', False)
