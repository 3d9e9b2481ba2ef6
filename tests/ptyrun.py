"""Run a tracker process with its output on a pseudo-terminal, as a maintainer sees it."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Sequence


def run_on_a_terminal(
    args: Sequence[str], env: dict[str, str], *, stdout_too: bool = False, timeout: float = 300
) -> str:
    """stderr (and stdout with ``stdout_too``) on one pty; the process must exit 0.

    The display only draws on a terminal, so a pipe would show nothing to test."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        list(args),
        env=env,
        stdout=follower if stdout_too else subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=timeout) == 0
    os.close(leader)
    return out.decode()
