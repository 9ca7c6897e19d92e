"""Dynamic pruning (MaxScore) in the shard executor: bit-identical to scoring every match.

Unit test (no Ray, no RocksDB: ShardIndex on the in-memory KV). Each query runs twice on
the same shard: pruned (pruning forced on however short the lists) and exhaustive (the
general path, which scores every posting). Hits -- ids, float scores, order -- totals and
facets must be equal, over corpora with many exact ties (duplicate documents), re-indexed
and deleted documents, filters, and k from 1 to past the number of matches.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from raysearch.analysis.analyzer import Analyzer
from raysearch.index.batch import ShardBatch, split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.search import executor, filters
from raysearch.search.plan import GlobalStats, QueryPlan, analyze_clauses, build_plan, stats_request
from raysearch.search.query import parse_query
from raysearch.storage.kv import MemoryKV

TYPES = {"tag": "keyword", "n": "integer"}
# a skewed vocabulary: a few words in most documents, many rare ones
VOCAB = ["common", "often", "usual"] + [f"w{i}" for i in range(40)]


def _document(rng: random.Random, i: int) -> dict:
    words = [rng.choice(VOCAB[:3]) for _ in range(rng.randint(0, 4))]
    words += [VOCAB[min(int(rng.expovariate(0.15)) + 3, len(VOCAB) - 1)] for _ in range(rng.randint(1, 12))]
    return {"id": f"d{i}", "body": " ".join(words), "tag": rng.choice("abc"), "n": rng.randint(0, 9)}


def _shard(seed: int, docs: int) -> ShardIndex:
    rng = random.Random(seed)
    shard = ShardIndex(MemoryKV())
    corpus = [_document(rng, i) for i in range(docs)]
    corpus += [dict(corpus[i], id=f"copy{i}") for i in range(0, docs, 7)]  # exact ties
    analyzer = Analyzer()
    for b in range(0, len(corpus), 40):
        per_shard, _, _ = split_batch(corpus[b:b + 40], [], 1, analyzer, TYPES)
        shard.apply(f"b{b}", per_shard[0])
    # re-index some (new numbers, old postings dropped) and delete others
    again = [_document(rng, i) for i in rng.sample(range(docs), docs // 10)]
    per_shard, _, _ = split_batch(again, [], 1, analyzer, TYPES)
    shard.apply("again", per_shard[0])
    shard.apply("gone", ShardBatch(deletes=[f"d{i}" for i in rng.sample(range(docs), docs // 10)]))
    return shard


def _plan(shard: ShardIndex, q: str, extra: dict) -> QueryPlan:
    clauses = analyze_clauses(parse_query(q, lambda f: False), Analyzer(), [("_all", 1.0)])
    req = stats_request(clauses)
    part = {"fields": shard.field_stats(req.fields), "pairs": req.pairs, "doc_freqs": shard.doc_freqs(req.pairs),
            "prefixes": [], "expansions": []}
    return build_plan(clauses, GlobalStats.merge([part], 10), {}, **extra)


def _both(monkeypatch, shard, plan, k):
    with monkeypatch.context() as m:
        m.setattr(executor, "PRUNE_MIN_POSTINGS", 0)
        pruned = executor.execute(shard, plan, k)
    with monkeypatch.context() as m:
        m.setattr(executor, "_prunable_terms", lambda plan, k: None)
        exhaustive = executor.execute(shard, plan, k)
    return pruned, exhaustive


QUERIES = ["common w1", "common often usual w0", "w0 w1 w2 w3", "common w30", "often w5 w5",
           "usual common", "w39 w38 common", "w2 w4 w6 w8 w10 w12 often"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pruned_search_equals_scoring_every_match(no_ray, monkeypatch, seed):
    shard = _shard(seed, 600)
    pruned_any = 0
    for q in QUERIES:
        for k in (1, 3, 10, 50, 2000):
            for extra in ({}, {"filter": ["term", "tag", ["a", "b"]]},
                          {"facets": {"tags": ["terms", "tag", 3]}}):
                plan = _plan(shard, q, extra)
                pruned, exhaustive = _both(monkeypatch, shard, plan, k)
                assert pruned == exhaustive, (q, k, extra)
                with monkeypatch.context() as m:
                    m.setattr(executor, "PRUNE_MIN_POSTINGS", 0)
                    terms = executor._prunable_terms(plan, k)
                    if terms is not None:
                        n = len(shard.stats.doc_ids)
                        top = executor._match_pruned(shard, terms, plan.avgdl, n, k,
                                                     shard.stats.live_mask(n))[2]
                        pruned_any += top is not None and len(top) < pruned["total"]
    # the test means something only if pruning did skip documents
    assert pruned_any > 10, pruned_any


def test_plans_that_cannot_be_pruned_are_not(no_ray):
    shard = _shard(4, 100)
    assert executor._prunable_terms(_plan(shard, "common w1", {}), 10) is not None
    assert executor._prunable_terms(_plan(shard, "common", {}), 10) is None  # one list: nothing to skip
    assert executor._prunable_terms(_plan(shard, "+common w1", {}), 10) is None  # a MUST clause
    assert executor._prunable_terms(_plan(shard, '"common w1"', {}), 10) is None  # a phrase
    assert executor._prunable_terms(_plan(shard, "common w1", {"sort": [["n", "asc"]]}), 10) is None
    assert executor._prunable_terms(_plan(shard, "common w1", {"search_after": [[1.0], "d1"]}), 10) is None


SMALL_VOCAB = ["x", "y", "z", "q", "r"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(st.lists(st.sampled_from(SMALL_VOCAB), min_size=1, max_size=40), min_size=2, max_size=80),
       words=st.lists(st.sampled_from(SMALL_VOCAB), min_size=2, max_size=4), k=st.integers(1, 12))
def test_pruning_is_exact_on_random_corpora(no_ray, docs, words, k):
    """Small corpora with lengths and term frequencies all over the place: the bounds are
    tight or loose in every combination, and lists of every size meet k."""
    shard = ShardIndex(MemoryKV())
    per_shard, _, _ = split_batch([{"id": f"d{i:03}", "body": " ".join(d)} for i, d in enumerate(docs)],
                                  [], 1, Analyzer())
    shard.apply("b", per_shard[0])
    plan = _plan(shard, " ".join(words), {})
    mp = pytest.MonkeyPatch()
    try:
        pruned, exhaustive = _both(mp, shard, plan, k)
    finally:
        mp.undo()
    assert pruned == exhaustive


def test_the_kth_smallest_from_a_sample_equals_a_whole_partition():
    """executor._kth_smallest (a sample bounds the k-th, then only the values below the bound
    are partitioned) against np.partition of every value: continuous values, heavy ties,
    infinities (missing sort values), values sorted either way (the worst samples)."""
    import numpy as np

    from raysearch.search.executor import _kth_smallest

    rng = np.random.default_rng(3)
    size = 100_000  # above the sampled path's threshold
    cases = [rng.random(size), rng.integers(0, 3, size).astype(float), np.sort(rng.random(size)),
             np.sort(rng.random(size))[::-1].copy(), np.where(rng.random(size) < 0.9, np.inf, rng.random(size)),
             np.full(size, 2.5)]
    for values in cases:
        for k in (1, 10, 100, 1000):
            assert _kth_smallest(values, k) == np.partition(values, k - 1)[k - 1], k
    small = rng.random(50)
    assert _kth_smallest(small, 7) == np.sort(small)[6]


def test_top_k_with_heavy_ties_equals_a_full_sort():
    """executor._top against sorting every row by (keys, id): few distinct key values, so
    that the k-th ties with thousands of rows (a match-all ranked by its constant score, a
    sort on a field most matches lack), with one key and with two."""
    import random

    import numpy as np

    from raysearch.search.executor import _top

    rng = random.Random(4)
    doc_ids = [f"d{rng.randrange(10**6):06}-{i}" for i in range(60000)]
    for distinct in (1, 2, 5, 1000):
        for key_count in (1, 2):
            for k in (1, 10, 100):
                rows = 5000 if k != 10 else 40_000  # and past _kth_smallest's sampled threshold
                numbers = np.asarray(sorted(rng.sample(range(60000), rows)), dtype=np.int64)
                keys = [np.asarray([float(rng.randrange(distinct)) for _ in numbers]) for _ in range(key_count)]
                if distinct == 5:
                    keys[0][::3] = np.inf  # missing values sort last
                expected = sorted((tuple(a[i] for a in keys), doc_ids[n], n) for i, n in enumerate(numbers.tolist()))[:k]
                got = _top(numbers, keys, doc_ids, k)
                assert [(n, key) for key, _, n in expected] == got, (distinct, key_count, k)


def _one_term_plan(shard: ShardIndex, q: str, extra: dict, operator: str = "or") -> QueryPlan:
    clauses = analyze_clauses(parse_query(q, lambda f: False), Analyzer(), [("_all", 1.0)], operator)
    req = stats_request(clauses)
    part = {"fields": shard.field_stats(req.fields), "pairs": req.pairs, "doc_freqs": shard.doc_freqs(req.pairs),
            "prefixes": [], "expansions": []}
    return build_plan(clauses, GlobalStats.merge([part], 10), {}, **extra)


# the extras every fast path is compared under: none, a filter, facets, explanations
EXTRAS = ({}, {"filter": ["term", "tag", ["a", "b"]]}, {"facets": {"tags": ["terms", "tag", 3], "n": ["stats", "n"]}},
          {"explain": True})


def _same_as_general(shard, monkeypatch, queries, fast_path: str, operator: str = "or") -> int:
    """Each query, k and extra answered with and without the fast path `executor.<fast_path>`
    (its plan test), asserted equal, alone and as a hybrid round's text part (with kNN hits
    counted beside it: `also_numbers`, matched or not, live or not, some past the shard's
    end); returns how many plans the fast path took."""
    taken = 0
    rng = np.random.default_rng(9)
    n = len(shard.stats.doc_ids)
    for q in queries:
        for k in (0, 1, 3, 10, 2000):
            for extra in EXTRAS:
                plan = _one_term_plan(shard, q, extra, operator)
                taken += getattr(executor, fast_path)(plan) is not None
                own = executor.execute(shard, plan, k)
                assert own == _general(shard, plan, k, monkeypatch, fast_path), (q, k, extra)
                also = np.concatenate([rng.choice(n, size=12, replace=False), [n + 3]]).astype(np.int64)
                own = executor.execute(shard, plan, k, also_numbers=also)
                assert own == _general(shard, plan, k, monkeypatch, fast_path, also), (q, k, extra, "also")
                assert "also_only" in own
    return taken


def _general(shard, plan, k: int, monkeypatch, fast_path: str, also_numbers=None) -> dict:
    """The plan's answer with the fast path turned off."""
    with monkeypatch.context() as m:
        m.setattr(executor, fast_path, lambda plan: None)
        return executor.execute(shard, plan, k, also_numbers=also_numbers)


@pytest.mark.parametrize("seed", [5, 6])
def test_a_hybrid_rounds_knn_hits_count_as_the_union_on_every_path(no_ray, seed):
    """execute(..., also_numbers) -- a hybrid round's own kNN hits, by number -- against an
    oracle from the plan's own matches: total = |matches ∪ (hits live and passing the
    filter)|, "also_only" = those hits no clause matched, and the ranked hits unchanged."""
    shard = _shard(seed, 500)
    n = len(shard.stats.doc_ids)
    rng = np.random.default_rng(seed)
    live = shard.stats.live_mask(n)
    for q in ("common", "w7", "w0 w1 w2", "+usual +w3", "common -often", "absent"):
        for extra in EXTRAS:
            plan = _one_term_plan(shard, q, extra)
            matched = {h[1] for h in executor.execute(shard, plan._replace(facets={}, explain=False), 10**6)["hits"]}
            passing = live.copy()
            if plan.filter:
                passing &= filters.evaluate(plan.filter, shard, n)
            also = np.concatenate([rng.choice(n, size=15, replace=False), [n, n + 7]]).astype(np.int64)
            hit_ids = {shard.stats.doc_ids[i] for i in also.tolist() if i < n and passing[i]}
            for k in (0, 10):
                got = executor.execute(shard, plan, k, also_numbers=also)
                alone = executor.execute(shard, plan, k)
                assert got["total"] == len(matched | hit_ids), (q, extra)
                assert sorted(got["also_only"]) == sorted(hit_ids - matched), (q, extra)
                assert got["hits"] == alone["hits"]


@pytest.mark.parametrize("seed", [5, 6])
def test_a_one_term_search_over_its_postings_equals_the_general_path(no_ray, monkeypatch, seed):
    """executor._execute_single_term (no array of the shard's size) against the general path:
    the same hits, float scores, order, totals, facets and explanations, with ties, re-indexed
    and deleted documents, filters, facets, `+term` (MUST) and k from 0 past the matches."""
    shard = _shard(seed, 500)
    taken = _same_as_general(shard, monkeypatch, ("common", "often", "w0", "w7", "w39", "+usual", "absent"),
                             "_single_term")
    assert taken >= 6 * 5 * 4  # every plan but the absent word's took the one-term path


@pytest.mark.parametrize("seed", [5, 6])
def test_an_and_of_terms_over_the_intersection_equals_the_general_path(no_ray, monkeypatch, seed):
    """executor._execute_conjunction (the shortest list looked up in the others) against the
    general path: the same hits, float scores, order, totals, facets and explanations, with
    ties, re-indexed and deleted documents, a repeated word, filters and k from 0 past the
    matches. (Taken however large the shortest list, for this small shard.)"""
    monkeypatch.setattr(executor, "CONJUNCTION_MAX_SHARE", 1.0)
    shard = _shard(seed, 500)
    queries = ("common often", "common w0", "w0 w1 w2", "usual common often", "w3 w3", "common absent", "w39 w0")
    taken = _same_as_general(shard, monkeypatch, queries, "_conjunctive_terms", operator="and")
    assert taken >= 6 * 5 * 4
    found = executor.execute(shard, _one_term_plan(shard, "common often", {}, operator="and"), 10)
    assert found["total"] > 10 and found["hits"]  # the intersection is not empty
    monkeypatch.setattr(executor, "CONJUNCTION_MAX_SHARE", 0.0)  # declined: the general path answers
    plan = _one_term_plan(shard, "common often", {}, operator="and")
    assert executor._execute_conjunction(shard, plan, executor._conjunctive_terms(plan), 10**6, 10) is None
    assert executor.execute(shard, plan, 10) == _general(shard, plan, 10, monkeypatch, "_conjunctive_terms")
    assert executor._conjunctive_terms(_one_term_plan(shard, "common often", {})) is None  # OR
    assert executor._conjunctive_terms(_one_term_plan(shard, "common often", {"sort": [["n", "asc"]]},
                                                      operator="and")) is None


def test_only_one_term_ranked_by_score_takes_the_one_term_path(no_ray):
    shard = _shard(7, 50)
    assert executor._single_term(_one_term_plan(shard, "common", {})) is not None
    assert executor._single_term(_one_term_plan(shard, "common w1", {})) is None
    assert executor._single_term(_one_term_plan(shard, "common", {"sort": [["n", "asc"]]})) is None
    assert executor._single_term(_one_term_plan(shard, "common", {"search_after": ([1.0], "d1")})) is None
    assert executor._single_term(_one_term_plan(shard, '"common often"', {})) is None


def test_a_lists_bounds_are_taken_when_it_is_read_and_hold_for_a_query_that_sees_fewer_documents(
        no_ray, monkeypatch):
    """The pruning bound of a list comes from its largest tf and smallest length, kept with the
    cached arrays (index/posting_cache.PostingArrays); a query that started before the newest
    documents were numbered (n below the list's last number) cuts the list, and the bound of the
    whole list still holds: its hits equal scoring every match below n."""
    import numpy as np

    shard = _shard(5, 600)
    held = shard.posting_arrays("_all", "common")
    assert held.max_tf == float(held[1].max()) and held.min_dl == float(held[2].min())
    assert shard.posting_arrays("_all", "common") is held  # from the cache, not read again
    plan = _plan(shard, "common often w1", {})
    terms = executor._prunable_terms(plan, 10)
    n = int(held[0][len(held[0]) // 2])  # as if the second half were numbered after the query began
    eligible = shard.stats.live_mask(n).copy()
    monkeypatch.setattr(executor, "PRUNE_MIN_POSTINGS", 0)
    candidates, scores, top = executor._match_pruned(shard, terms, plan.avgdl, n, 10, eligible)
    lists = [executor._postings_below(shard, f, t, n) for f, t, _ in terms]
    assert all(len(numbers) == 0 or numbers[-1] < n for numbers, _, _ in lists)
    exhaustive = np.zeros(n)
    for (field, _, weight), (numbers, tf, dl) in zip(terms, lists):
        exhaustive[numbers] += executor.Bm25Weight(weight, plan.avgdl[field]).score(tf, dl)
    matches = np.flatnonzero(candidates)
    best = matches[np.lexsort((matches, -exhaustive[matches]))][:10]
    assert top is not None and set(best) <= set(top)
    assert np.array_equal(scores[best], exhaustive[best])
