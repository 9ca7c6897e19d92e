"""Fuzzy terms (pure): `word~`, `word~1`, `word~2`, `fuzziness` in the Elasticsearch API, and
an index's `typo_tolerance`.

A fuzzy term matches every term of the field's dictionary within `edits` edits of it
(Lucene's measure: insertions, deletions, substitutions, and a swap of two neighbours as
one edit -- optimal string alignment). AUTO is Elasticsearch's rule: no edit for terms of
up to 2 characters, 1 up to 5, 2 beyond.

Each shard finds its candidates (index/fuzzy_terms.py) with rapidfuzz (compiled, bit-parallel edit distances with
a cut-off) over only the terms whose length is within `edits` of the query term (the
dictionary is bucketed by length once per change), never a Python loop over terms; it
returns the best `limit` by (distance, term), so the union over shards holds the global
best `limit` whatever the shard count. The coordinator keeps those and scores them like
Lucene's fuzzy query: one idf for them all (the largest document frequency among them,
so a rare misspelling does not outscore the word it misspells), times
1 - distance / min(len(query term), len(term)), so an exact match ranks above fuzzy ones.
"""

from __future__ import annotations

from raysearch.search.query import AUTO


def auto_edits(term: str) -> int:
    n = len(term)
    return 0 if n <= 2 else 1 if n <= 5 else 2


def resolve(term: str, edits: int) -> int:
    return auto_edits(term) if edits == AUTO else edits


def similarity(term: str, candidate: str, distance: int) -> float:
    """Lucene's boost of a fuzzy term: 1 for the term itself, less the more edits it took."""
    if distance == 0:
        return 1.0
    return max(0.0, 1.0 - distance / min(len(term), len(candidate)))


def merge(parts: list[list], limit: int) -> list[tuple[str, int]]:
    """The shards' candidate lists -> the best `limit` of their union, by (distance, term)."""
    best: dict[str, int] = {}
    for part in parts:
        for term, distance in part:
            best[term] = distance
    return sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:limit]
