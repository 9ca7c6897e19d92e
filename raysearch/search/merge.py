"""Gather step: merge the shards' ranked hits into one page, and the answer's shape."""

from __future__ import annotations

import heapq
import time
import itertools

from raysearch.search.sorting import DESC, SCORE, merge_key

FETCH_WITH_QUERY_MAX = 50  # first pages up to this size come back with the query phase
SCORE_ONLY = [[SCORE, DESC]]


def first_page(start: int, size: int) -> bool:
    """Does this page travel with the query phase (each shard sends its own top `size`'s
    documents) rather than come from a fetch phase afterwards?"""
    return start == 0 and size <= FETCH_WITH_QUERY_MAX


def merge_hits(shard_hits: list[list], keys: list[list[str]], start: int, stop: int) -> list[tuple]:
    """Hits [score, id, sort values] of every shard (each best first) -> the page
    [start:stop] as (score, id, sort values), in the total order of `keys` then id."""
    if keys == SCORE_ONLY:  # scores are never missing: (-score, id) is the order, no key tuple per hit
        page = itertools.islice(heapq.merge(*shard_hits, key=lambda h: (-h[0], h[1])), start, stop)
        return [(score, doc_id, values) for score, doc_id, values in page]
    ranked = [[(merge_key(keys, values, doc_id), score, doc_id, values) for score, doc_id, values in hits]
              for hits in shard_hits]
    page = itertools.islice(heapq.merge(*ranked), start, stop)
    return [(score, doc_id, values) for _, score, doc_id, values in page]


def answer(started: float, total: int, hits: list, merged_facets: dict | None) -> dict:
    took = time.perf_counter() - started
    out = {"total": total, "took_ms": round(took * 1000, 3), "hits": hits}
    if merged_facets is not None:
        out["facets"] = merged_facets
    return out
