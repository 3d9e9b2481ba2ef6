"""The cyclic garbage collector paused around work that builds many small acyclic objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the collector for the block; a collector someone else turned off stays off.

    A plan builds some 100,000 small tuples, a first sync's load a tuple per row of a history;
    none forms a cycle, so plain reference counting frees them all, yet every few hundred made
    start a sweep that re-scans the survivors, and now and then one that walks the whole heap
    (a fifth of plan time at kernel scale; a quarter of a second per full pass during a load)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
