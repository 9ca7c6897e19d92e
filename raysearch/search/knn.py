"""kNN search (pure): the request's `knn` clause read and checked, and one shard's part.

Each shard ranks its own documents that have the field (and pass the filter) by the
field's similarity and returns its top k; the coordinator merges the shards' lists
exactly, as it merges BM25 hits, so the answer does not depend on the shard count.
A shard's search is exact (index/vectors.py): a matrix-vector product over the eligible
rows, which is also what a selective filter needs. Scores are Elasticsearch's:
(1 + cosine) / 2, (1 + dot) / 2, 1 / (1 + l2^2). Ties go to the smaller id.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from raysearch import schema
from raysearch.errors import InvalidRequest
from raysearch.index.vectors import L2, scores_of, similarities
from raysearch.search import filters

MAX_K = 10_000
MAX_CANDIDATES = 10_000


class KnnQuery(NamedTuple):
    """What every shard runs for a kNN search (pickled as a plain tuple, like QueryPlan)."""

    field: str
    vector: bytes  # float32, little-endian
    k: int
    num_candidates: int
    similarity: str
    filter: list | None = None  # filters.parse_filter
    # Elasticsearch's `similarity` threshold: the least similarity (cosine, dot_product) or the
    # greatest l2 distance a hit may have; None: no threshold
    threshold: float | None = None


def parse_knn(spec: Any, vectors: dict[str, schema.VectorSpec], types: dict[str, str],
              search_filter: list | None = None) -> KnnQuery:
    """The `knn` object of a search body -> KnnQuery; InvalidRequest naming what is wrong.
    `search_filter` (the request's `filter`) applies to the candidates too; a `filter`
    inside `knn` (Elasticsearch's place for it) is combined with it."""
    if not isinstance(spec, dict):
        raise InvalidRequest('knn: expected an object {"field", "vector", "k", "num_candidates"}')
    unknown = set(spec) - {"field", "vector", "k", "num_candidates", "filter", "similarity"}
    if unknown:
        raise InvalidRequest(f"knn: unknown key(s) {sorted(unknown)}; expected field, vector, k, num_candidates, "
                             f"filter, similarity")
    field = spec.get("field")
    if not isinstance(field, str) or field not in vectors:
        declared = sorted(vectors) or "none"
        raise InvalidRequest(f"knn: field {str(field)[:60]!r} is not a vector field of this index (vector fields: {declared})")
    vspec = vectors[field]
    try:
        vector = schema.vector_value(field, vspec, spec.get("vector"))
    except ValueError as exc:
        raise InvalidRequest(f"knn: {exc}") from None
    k = _count(spec.get("k", 10), "k", MAX_K)
    candidates = _count(spec.get("num_candidates", max(100, k)), "num_candidates", MAX_CANDIDATES)
    if candidates < k:
        raise InvalidRequest(f"knn: num_candidates ({candidates}) must be at least k ({k})")
    node = search_filter
    if spec.get("filter") is not None:
        inner = filters.parse_filter(spec["filter"], types)
        node = inner if node is None else ["and", [node, inner]]
    threshold = spec.get("similarity")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
        raise InvalidRequest("knn: similarity (the threshold a hit must reach) must be a number")
    return KnnQuery(field, vector.astype("<f4").tobytes(), k, candidates, vspec.similarity, node,
                    None if threshold is None else float(threshold))


def _count(value: Any, name: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidRequest(f"knn: {name} must be a whole number from 1 to {limit}, got {str(value)[:40]!r}")
    return value


def shard_knn(shard, query: KnnQuery, exact_below: int = 10_000) -> list[list]:
    """One shard's top k as [[score, id], ...], best first (ties: smaller id first)."""
    return [[score, doc_id] for score, doc_id, _ in ranked_knn(shard, query, exact_below)]


def ranked_knn(shard, query: KnnQuery, exact_below: int = 10_000) -> list[tuple[float, str, int]]:
    """One shard's top k as (score, id, document number), best first (ties: smaller id first).

    Exact over the eligible rows when they are fewer than `exact_below` or the column has
    no ANN graph of this similarity; else the graph proposes candidates (at least
    num_candidates, more while fewer than k of them pass the filter) and the rows it does
    not cover yet are added, and all of them are scored exactly."""
    column = shard.vectors.column(query.field)
    if column is None:
        return []
    doc_ids = shard.stats.doc_ids
    n = len(doc_ids)
    matrix, norms, present, row_of = column.arrays(n)
    eligible = present & shard.stats.live_mask(n)
    if query.filter:
        eligible &= filters.evaluate(query.filter, shard, n)
    # Counted, not listed: at 500,000 documents a shard listing every eligible row spent
    # more than its graph search (the graph's path lists only the rows it does not cover).
    eligible_count = int(np.count_nonzero(eligible))
    if eligible_count == 0:
        return []
    vector = np.frombuffer(query.vector, dtype="<f4")
    ann = column.ann
    if (ann is not None and ann.similarity == query.similarity and eligible_count >= exact_below
            and query.num_candidates < eligible_count):  # as many candidates as rows: the exact answer, exactly
        rows = _ann_candidates(ann, vector, eligible, query)
    else:
        rows = np.flatnonzero(eligible)
    raw = similarities(matrix, norms, row_of[rows], vector, query.similarity)
    if query.threshold is not None:
        near = raw <= query.threshold ** 2 if query.similarity == L2 else raw >= query.threshold
        rows, raw = rows[near], raw[near]
        if len(rows) == 0:
            return []
    scores = scores_of(raw, query.similarity)
    k = min(query.k, len(rows))
    if k < len(rows):
        # every row scoring at least the k-th best: ties at the boundary are then ranked by id
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        rows, scores = rows[keep], scores[keep]
    numbers = rows.tolist()
    ranked = sorted(zip((-scores).tolist(), (doc_ids[r] for r in numbers), numbers), key=lambda p: (p[0], p[1] or ""))
    return [(-neg, doc_id, number) for neg, doc_id, number in ranked if doc_id is not None][:k]


def _ann_candidates(ann, vector: np.ndarray, eligible: np.ndarray, query: KnnQuery) -> np.ndarray:
    """The rows worth scoring: the graph's eligible candidates and the rows it does not cover."""
    covered = min(ann.covered, len(eligible))
    tail = np.flatnonzero(eligible[covered:]) + covered
    count = query.num_candidates
    while True:
        keys = ann.search(vector, count)
        keys = keys[keys < len(eligible)]
        found = keys[eligible[keys]]
        if len(found) >= query.k or count >= len(ann):
            break
        if count >= 16 * query.num_candidates:  # a selective filter: scoring the eligible rows is cheaper
            return np.flatnonzero(eligible)
        count *= 4
    return np.union1d(found, tail)


def merge_knn(lists: list[list[list]], k: int) -> list[tuple[float, str]]:
    """The shards' top-k lists -> the global top k as (score, id), best first."""
    merged = sorted(((score, doc_id) for hits in lists for score, doc_id in hits), key=lambda h: (-h[0], h[1]))
    return merged[:k]
