"""The ingress's cache of summed statistics (unit: no Ray): what it keeps, when it answers,
and that a plan from it equals a plan from a fresh statistics round."""

from raysearch.analysis.analyzer import Analyzer
from raysearch.index.batch import ShardBatch, split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.search.executor import execute
from raysearch.search.plan import GlobalStats, StatsRequest, analyze_clauses, build_plan, stats_request
from raysearch.search.query import parse_query
from raysearch.search.stats_cache import StatsCache
from raysearch.storage.kv import MemoryKV


def _stats(fields, dfs):
    return GlobalStats(fields, dfs, {})


def test_answers_only_when_every_field_and_term_is_cached_at_one_version():
    cache = StatsCache()
    req = StatsRequest(["_all"], [("_all", "a"), ("_all", "b")], [])
    assert cache.lookup("i", req) is None
    cache.store("i", [["e0", 2], ["e1", 4]], req, _stats({"_all": (10, 50)}, {("_all", "a"): 3, ("_all", "b"): 1}))
    stats, versions = cache.lookup("i", req)
    assert versions == [["e0", 2], ["e1", 4]] and stats.doc_freqs == {("_all", "a"): 3, ("_all", "b"): 1}
    assert cache.lookup("i", StatsRequest(["_all"], [("_all", "c")], [])) is None  # unknown term
    assert cache.lookup("i", StatsRequest(["title"], [], [])) is None  # unknown field
    assert cache.lookup("i", StatsRequest(["_all"], [("_all", "a")], [("_all", "pre")])) is None  # prefixes
    assert cache.lookup("other", req) is None
    # more terms at the same versions accumulate; a new version replaces everything
    cache.store("i", [["e0", 2], ["e1", 4]], StatsRequest(["_all"], [("_all", "c")], []),
                _stats({"_all": (10, 50)}, {("_all", "c"): 7}))
    assert cache.lookup("i", StatsRequest(["_all"], [("_all", "a"), ("_all", "c")], [])) is not None
    cache.store("i", [["e0", 4], ["e1", 4]], StatsRequest(["_all"], [("_all", "c")], []),
                _stats({"_all": (11, 55)}, {("_all", "c"): 8}))
    assert cache.lookup("i", req) is None
    assert cache.lookup("i", StatsRequest(["_all"], [("_all", "c")], []))[0].doc_freqs == {("_all", "c"): 8}
    # statistics read while a shard was changing them (version None) are never kept
    cache.invalidate("i")
    cache.store("i", [["e0", 6], None], req, _stats({"_all": (1, 1)}, {("_all", "a"): 1, ("_all", "b"): 1}))
    assert cache.lookup("i", req) is None


def test_a_shard_version_moves_with_every_statistics_change_and_never_repeats():
    shard = ShardIndex(MemoryKV())
    v0 = shard.stats_version()
    per_shard, _, _ = split_batch([{"id": "a", "title": "red apple"}], [], 1, Analyzer())
    shard.apply("b1", per_shard[0])
    v1 = shard.stats_version()
    assert v1 != v0 and v1[0] == v0[0] and v1[1] % 2 == 0
    shard.apply("b2", ShardBatch(deletes=["a"]))
    assert shard.stats_version() != v1
    reopened = ShardIndex(shard.kv)  # same data, new epoch: no version of the old one is valid
    assert reopened.stats_version()[0] != v1[0]


def test_a_plan_from_the_cache_scores_as_a_plan_from_a_fresh_round():
    shard = ShardIndex(MemoryKV())
    docs = [{"id": str(i), "title": f"word{i % 5} common text", "body": f"more{i % 3} text"} for i in range(60)]
    per_shard, _, _ = split_batch(docs, [], 1, Analyzer())
    shard.apply("b", per_shard[0])
    cache = StatsCache()
    clauses = analyze_clauses(parse_query("word1 common more2", lambda f: False), Analyzer(), [("_all", 1.0)])
    req = stats_request(clauses)
    part = {"fields": shard.field_stats(req.fields), "pairs": req.pairs, "doc_freqs": shard.doc_freqs(req.pairs),
            "prefixes": [], "expansions": []}
    fresh = GlobalStats.merge([part], 10)
    cache.store("i", [shard.stats_version()], req, fresh)
    cached, versions = cache.lookup("i", req)
    assert versions == [shard.stats_version()]
    assert execute(shard, build_plan(clauses, cached), 10) == execute(shard, build_plan(clauses, fresh), 10)
