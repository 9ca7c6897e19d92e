import math

from raysearch.search import bm25
from raysearch.search.merge import merge_hits


def test_lucene_idf_and_score(no_ray):
    # Lucene 8+: idf = ln(1 + (N - n + .5)/(n + .5)); no (k1 + 1) factor.
    assert math.isclose(bm25.idf(10, 2), math.log(1 + 8.5 / 2.5))
    w = bm25.idf(10, 2)
    assert math.isclose(bm25.term_score(w, 2, 10, 10), w * 2 / (2 + 1.2))
    assert bm25.term_score(w, 1, 20, 10) < bm25.term_score(w, 1, 5, 10)  # longer docs score less


def test_merge_hits_orders_by_score_then_id(no_ray):
    keys = [["_score", "desc"]]
    shards = [[[2.0, "b", [2.0]], [1.0, "d", [1.0]]], [[3.0, "c", [3.0]], [2.0, "a", [2.0]]], []]
    assert [(s, d) for s, d, _ in merge_hits(shards, keys, 0, 3)] == [(3.0, "c"), (2.0, "a"), (2.0, "b")]
    assert [(s, d) for s, d, _ in merge_hits(shards, keys, 2, 12)] == [(2.0, "b"), (1.0, "d")]


def test_merge_hits_by_fields_missing_last_either_way(no_ray):
    keys = [["section", "desc"], ["size", "asc"]]
    shards = [[[0.0, "x", ["b", 5]], [0.0, "y", [None, 1]]], [[0.0, "z", ["b", 2]], [0.0, "w", ["a", None]]]]
    # shards list their hits in this same order (best first)
    shards[1] = sorted(shards[1], key=lambda h: h[2][0], reverse=True)
    assert [d for _, d, _ in merge_hits(shards, keys, 0, 10)] == ["z", "x", "w", "y"]


def test_the_weight_the_executor_scores_with(no_ray):
    """Bm25Weight is what production scores with (search/executor.py): its arithmetic
    against Lucene's formula written out, arrays and scalars alike, and its bound."""
    import numpy as np

    w = bm25.Bm25Weight(2.0 * bm25.idf(100, 7), avgdl=12.5)
    for tf, dl in [(1, 3), (4, 12.5), (9, 40)]:
        lucene = w.weight * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / 12.5))
        assert math.isclose(w.score(tf, dl), lucene, rel_tol=1e-12)
    tf, dl = np.array([1.0, 4.0, 9.0]), np.array([3.0, 12.5, 40.0])
    assert np.allclose(w.scorer()(tf, dl), [w.score(a, b) for a, b in zip(tf, dl)], rtol=0, atol=0)
    assert w.max_score(9, 3) >= max(w.score(a, b) for a in (1, 4, 9) for b in (3, 12.5, 40))
    detail = w.explain(4, 12.5, boost=2.0, idf_value=bm25.idf(100, 7))
    assert math.isclose(detail["value"], w.score(4, 12.5)) and detail["tf"] == 4 and detail["boost"] == 2.0
