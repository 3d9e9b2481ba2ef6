"""One progress display for every long command (``sync``, ``check``), on stderr.

A phase with a known total draws ``name  done/total  [####......]  40%  0:12``; without one, the
count so far. Each phase rewrites one line; when the next phase starts, the finished line stays,
so the display never erases what was printed before it, and whatever the command prints after
:meth:`LineProgress.done` stays on screen. Callers create it with ``show=False`` off a terminal
or with ``--quiet``: cron mails stay clean.

The producers (:mod:`tracker.ingest.gitlog`, :mod:`tracker.ingest.sources`, :mod:`tracker.check`)
only see the two calls of :class:`Reporter`; they never draw.
"""

from __future__ import annotations

import os
import time
from typing import Protocol, TextIO, runtime_checkable

_BAR = 20
_INTERVAL = 0.1  # seconds between redraws of one phase


@runtime_checkable
class Reporter(Protocol):
    """What a long operation tells a display: how much a phase will do, and how much it did."""

    def __call__(self, phase: str, n: int) -> None: ...

    def expect(self, phase: str, total: int) -> None: ...


class LineProgress:
    def __init__(self, stream: TextIO, *, show: bool, unit: str = "") -> None:
        self.stream = stream
        self.show = show
        self.unit = unit  # drawn before the count: "step 12/823"
        self.phase: str | None = None
        self.done_n = 0
        self.total: int | None = None
        self.extra = ""
        self.started = time.monotonic()
        self.phase_started = self.started
        self.last = 0.0
        self.width = 0

    # -- Reporter ---------------------------------------------------------------------------

    def expect(self, phase: str, total: int) -> None:
        self._enter(phase)
        self.total = total
        self._draw(force=True)

    def __call__(self, phase: str, n: int) -> None:
        self.update(phase, self.done_n + n if phase == self.phase else n)

    # -- direct use -------------------------------------------------------------------------

    def update(self, phase: str, done: int, total: int | None = None, extra: str = "") -> None:
        """Phase ``phase`` has done ``done`` (of ``total``, when given)."""
        self._enter(phase)
        self.done_n = done
        if total is not None:
            self.total = total
        self.extra = extra
        self._draw(force=self.total is not None and done >= self.total)

    def done(self) -> None:
        """Leave the last line drawn and end it: output after this starts on a fresh line."""
        if self.show and self.phase is not None:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
        self.phase = None

    # -- drawing ----------------------------------------------------------------------------

    def _enter(self, phase: str) -> None:
        if phase == self.phase:
            return
        if self.show and self.phase is not None:
            self._draw(force=True)
            self.stream.write("\n")
        self.phase, self.done_n, self.total, self.extra = phase, 0, None, ""
        self.phase_started = time.monotonic()
        self.width = 0

    def line(self) -> str:
        minutes, seconds = divmod(int(time.monotonic() - self.phase_started), 60)
        parts = [self.phase or ""]
        if self.total is not None:
            total = max(self.total, self.done_n)
            parts.append(f"{self.unit}{self.done_n:,}/{total:,}")
        else:
            parts.append(f"{self.unit}{self.done_n:,}")
        if self.extra:
            parts.append(self.extra)
        if self.total is not None:
            filled = _BAR * self.done_n // total if total else _BAR
            parts.append("[" + "#" * filled + "." * (_BAR - filled) + "]")
            parts.append(f"{100 * self.done_n // total if total else 100}%")
        parts.append(f"{minutes}:{seconds:02d}")
        return "  ".join(parts)

    def _draw(self, *, force: bool) -> None:
        if not self.show:
            return
        now = time.monotonic()
        if not force and now - self.last < _INTERVAL:
            return
        self.last = now
        text = self.line()
        columns = self._columns()
        if columns:  # a line wider than the terminal would wrap, and \r redraw only its end
            text = text[: columns - 1]
        self.stream.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.stream.flush()

    def _columns(self) -> int:
        """The terminal's width; 0 when it has none (a pseudo-terminal nobody sized)."""
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 0
