"""Gather step: merge per-shard top-k lists into one page."""

from __future__ import annotations

import heapq


def merge_top(shard_hits: list[list[tuple[float, str]]], start: int, size: int) -> list[tuple[float, str]]:
    """Hits ordered by score desc, then id asc (ties broken by id, as the API promises)."""
    merged = heapq.merge(*[sorted(h, key=lambda x: (-x[0], x[1])) for h in shard_hits], key=lambda x: (-x[0], x[1]))
    out = []
    for i, hit in enumerate(merged):
        if i >= start + size:
            break
        if i >= start:
            out.append(hit)
    return out
