"""Hybrid ranking (pure): two ranked lists -- BM25's and kNN's, each already merged across
shards -- fused into one. Fusing after the merge is what makes the answer independent of
the shard count.

- RRF (reciprocal rank fusion, Cormack et al. 2009; Elasticsearch's `rrf` retriever): a
  document scores the sum over the lists it appears in, within the top `window` of each,
  of 1 / (rank_constant + rank), ranks from 1.
- linear: (1 - weight) * bm25_norm + weight * knn_score, BM25 min-max normalised over its
  window (a document absent from a list adds 0 for it).

Ties are broken by id ascending, as everywhere else.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from raysearch.errors import InvalidRequest

RRF, LINEAR = "rrf", "linear"
MAX_WINDOW = 10_000


class Fusion(NamedTuple):
    method: str = RRF
    rank_constant: int = 60
    window: int = 100
    weight: float = 0.5


def parse_rank(spec: Any) -> Fusion:
    """The `rank` object of a search body -> Fusion (None: RRF with its defaults)."""
    if spec is None:
        return Fusion()
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in (RRF, LINEAR):
        raise InvalidRequest('rank: expected {"rrf": {"rank_constant": 60, "window": 100}} or {"linear": {"weight": 0.5}}')
    (method, options), = spec.items()
    options = options if options is not None else {}
    if not isinstance(options, dict):
        raise InvalidRequest(f"rank.{method}: expected an object")
    allowed = {"rank_constant", "window"} if method == RRF else {"weight", "window"}
    unknown = set(options) - allowed
    if unknown:
        raise InvalidRequest(f"rank.{method}: unknown key(s) {sorted(unknown)}; expected {sorted(allowed)}")
    window = options.get("window", 100)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW:
        raise InvalidRequest(f"rank.{method}.window must be a whole number from 1 to {MAX_WINDOW}")
    if method == RRF:
        constant = options.get("rank_constant", 60)
        if isinstance(constant, bool) or not isinstance(constant, int) or constant < 1:
            raise InvalidRequest("rank.rrf.rank_constant must be a whole number of at least 1")
        return Fusion(RRF, constant, window)
    weight = options.get("weight", 0.5)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise InvalidRequest("rank.linear.weight must be a number from 0 to 1")
    return Fusion(LINEAR, 60, window, float(weight))


class Fused(NamedTuple):
    score: float
    doc_id: str
    text_rank: int | None
    knn_rank: int | None


def fuse(text: list[tuple[float, str]], knn: list[tuple[float, str]], fusion: Fusion) -> list[Fused]:
    """Both lists best first as (score, id) -> the fused list, best first (ties: id ascending)."""
    text, knn = text[:fusion.window], knn[:fusion.window]
    text_rank = {doc_id: i + 1 for i, (_, doc_id) in enumerate(text)}
    knn_rank = {doc_id: i + 1 for i, (_, doc_id) in enumerate(knn)}
    ids = list(dict.fromkeys([doc_id for _, doc_id in text] + [doc_id for _, doc_id in knn]))
    if fusion.method == RRF:
        c = fusion.rank_constant

        def score(doc_id):
            total = 0.0
            if doc_id in text_rank:
                total += 1.0 / (c + text_rank[doc_id])
            if doc_id in knn_rank:
                total += 1.0 / (c + knn_rank[doc_id])
            return total
    else:
        bm25 = {doc_id: s for s, doc_id in text}
        knn_score = {doc_id: s for s, doc_id in knn}
        low = min(bm25.values(), default=0.0)
        span = max(bm25.values(), default=0.0) - low
        w = fusion.weight

        def score(doc_id):
            norm = ((bm25[doc_id] - low) / span if span > 0 else 1.0) if doc_id in bm25 else 0.0
            return (1.0 - w) * norm + w * knn_score.get(doc_id, 0.0)
    fused = [Fused(score(doc_id), doc_id, text_rank.get(doc_id), knn_rank.get(doc_id)) for doc_id in ids]
    fused.sort(key=lambda f: (-f.score, f.doc_id))
    return fused
