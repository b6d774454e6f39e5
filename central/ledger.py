"""Sequence accounting for one device: how far is everything stored, and what is missing."""

from __future__ import annotations

from collections.abc import Iterable

Range = tuple[int, int]


def merge(ranges: Iterable[Iterable[int]]) -> list[Range]:
    """Sorted, merged, inclusive ranges (adjacent ones joined)."""
    out: list[list[int]] = []
    for a, b in sorted((int(r[0]), int(r[1])) for r in ranges):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def advance(acked: int, stored: Iterable[int], lost: Iterable[Iterable[int]] = ()) -> int:
    """The highest N such that every seq in (acked, N] is stored or known lost."""
    done = set(stored)
    lost_r = merge(lost)
    n = acked
    while True:
        if n + 1 in done:
            n += 1
            continue
        hit = next((b for a, b in lost_r if a <= n + 1 <= b), None)
        if hit is None:
            return n
        n = hit


def missing(
    acked: int, high: int, stored: Iterable[int], lost: Iterable[Iterable[int]] = ()
) -> list[Range]:
    """Ranges of seqs in (acked, high] that are neither stored nor known lost."""
    covered = merge([(s, s) for s in stored if acked < s <= high] + [list(r) for r in lost])
    out: list[Range] = []
    nxt = acked + 1
    for a, b in covered:
        if b < nxt:
            continue
        if a > high:
            break
        if a > nxt:
            out.append((nxt, min(a - 1, high)))
        nxt = max(nxt, b + 1)
    if nxt <= high:
        out.append((nxt, high))
    return out


def intersect(r: Range, others: Iterable[Iterable[int]]) -> list[Range]:
    out = []
    for o in others:
        a, b = max(r[0], int(o[0])), min(r[1], int(o[1]))
        if a <= b:
            out.append((a, b))
    return merge(out)
