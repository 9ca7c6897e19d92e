"""A shard's side of fuzzy terms (search/fuzzy.py): the dictionary's terms within a number
of edits of a query term, found by rapidfuzz (compiled, bit-parallel edit distances with
a cut-off) among the terms whose length is within that many edits -- never a Python loop
over the dictionary. The distance is Lucene's: optimal string alignment (a swap of two
neighbours is one edit)."""

from __future__ import annotations


def length_buckets(terms: list[str]) -> dict[int, list[str]]:
    buckets: dict[int, list[str]] = {}
    for term in terms:
        buckets.setdefault(len(term), []).append(term)
    return buckets


def candidates(buckets: dict[int, list[str]], term: str, edits: int, limit: int) -> list[tuple[str, int]]:
    """The dictionary's terms within `edits` of `term`: the best `limit` as (term, distance)."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    if edits == 0:
        return [(term, 0)] if term in buckets.get(len(term), ()) else []
    pool: list[str] = []
    for length in range(max(1, len(term) - edits), len(term) + edits + 1):
        pool.extend(buckets.get(length, ()))
    found = process.extract(term, pool, scorer=OSA.distance, score_cutoff=edits, limit=None)
    ranked = sorted((distance, choice) for choice, distance, _ in found)
    return [(choice, int(distance)) for distance, choice in ranked[:limit]]
