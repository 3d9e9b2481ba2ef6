"""One short key for the set of paths a diff touches, the same for a commit and for a mail.

``git patch-id`` hashes every file's ``diff --git a/x b/x`` line, so two diffs with one patch-id
touch the same paths. Comparing these keys finds the few commits whose patch-id could equal a
given one without computing any patch-id; an unequal key rules a match out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import cast

# The key of a diff that touches nothing (a merge, an empty commit): it matches nothing.
NO_PATHS = ""


def paths_key(paths: Iterable[str | None]) -> str:
    unique = set(paths)  # built in C: a first sync keys every commit of a history
    unique.difference_update((None, "", "/dev/null"))
    names: list[str] = sorted(cast("set[str]", unique))  # None is gone
    if not names:
        return NO_PATHS
    return hashlib.sha1("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def unquote_path(name: str) -> str:
    """A path as git prints it quoted (``"a\\tb"``, octal bytes) back to the name itself."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 >= len(body):
            out += c.encode("utf-8", "surrogateescape")
            i += 1
        elif body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        elif body[i + 1 : i + 4].isdigit() and len(body[i + 1 : i + 4]) == 3:
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out += c.encode()
            i += 1
    return out.decode("utf-8", "surrogateescape")
