import math

from raysearch.search import bm25
from raysearch.search.merge import merge_top


def test_lucene_idf_and_score(no_ray):
    # Lucene 8+: idf = ln(1 + (N - n + .5)/(n + .5)); no (k1 + 1) factor.
    assert math.isclose(bm25.idf(10, 2), math.log(1 + 8.5 / 2.5))
    w = bm25.idf(10, 2)
    assert math.isclose(bm25.term_score(w, 2, 10, 10), w * 2 / (2 + 1.2))
    assert bm25.term_score(w, 1, 20, 10) < bm25.term_score(w, 1, 5, 10)  # longer docs score less


def test_merge_top_orders_by_score_then_id(no_ray):
    shards = [[(2.0, "b"), (1.0, "d")], [(2.0, "a"), (3.0, "c")], []]
    assert merge_top(shards, 0, 3) == [(3.0, "c"), (2.0, "a"), (2.0, "b")]
    assert merge_top(shards, 2, 10) == [(2.0, "b"), (1.0, "d")]
