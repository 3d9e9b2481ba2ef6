"""git's rename similarity estimate (diffcore-delta.c), reimplemented: bytes per chunk hash."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from tracker.simulate.objects import _BINARY_PROBE

_HASHBASE = 107927
_MASK32 = 0xFFFFFFFF


@lru_cache(maxsize=1 << 16)
def _chunk_hash(chunk: bytes) -> int:
    a1 = a2 = 0
    for c in chunk:
        old1 = a1
        a1 = (((a1 << 7) ^ (a2 >> 25)) + c) & _MASK32
        a2 = ((a2 << 7) ^ (old1 >> 25)) & _MASK32
    return ((a1 + a2 * 0x61) & _MASK32) % _HASHBASE


def _span_counts(data: bytes, count_last: bool) -> Counter[int]:
    """Bytes per chunk hash, chunks being lines cut at 64 bytes, as git's hash_chars() does."""
    if b"\0" not in data[:_BINARY_PROBE]:
        # git skips a CR that precedes a LF in text
        data = data.replace(b"\r\n", b"\n")
    counts: Counter[int] = Counter()
    lines = data.split(b"\n")
    tail = lines.pop()
    for line in lines:
        line += b"\n"
        for i in range(0, len(line), 64):
            piece = line[i : i + 64]
            counts[_chunk_hash(piece)] += len(piece)
    for i in range(0, len(tail), 64):
        piece = tail[i : i + 64]
        if len(piece) == 64 or count_last:
            counts[_chunk_hash(piece)] += len(piece)
    return counts
