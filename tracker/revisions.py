"""Validation of the revisions tracker hands to git, without importing a git library.

Shas come from mails and feeds: each one is checked to be plain hex before it reaches a git
command line, so nothing a mail says can become an option.
"""

from __future__ import annotations

import re

from tracker.errors import InvalidRevisionError

HEX = re.compile(r"^[0-9a-f]{4,40}$")
_REFNAME_BAD = re.compile(r"(^-)|(\.\.)|[\s~^:?*\[\\\x00-\x1f]|(@\{)")


def check_sha(value: str) -> str:
    """Return ``value`` lower-cased if it is a plain hex object name; raise otherwise."""
    v = value.strip().lower()
    if not HEX.match(v):
        raise InvalidRevisionError(f"not a commit id: {value!r}")
    return v


def check_refname(value: str) -> str:
    if not value or _REFNAME_BAD.search(value):
        raise InvalidRevisionError(f"not a usable ref name: {value!r}")
    return value
