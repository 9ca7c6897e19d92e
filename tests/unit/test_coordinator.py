"""The search coordinator (search/coordinator.py) over in-process shards (no Ray): the
whole flow -- limits, statistics round, one-round searches from the cache and the stale
re-plan, exact merge, fetch phase, highlighting, facets -- against the brute-force oracle,
on any number of shards."""

from __future__ import annotations

import asyncio

import pytest

from raysearch.analysis.analyzer import Analyzer
from raysearch.errors import InvalidRequest
from raysearch.index.batch import split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.models import IndexSettings, SearchRequest
from raysearch.search.coordinator import IndexTarget, SearchCoordinator, SearchLimits
from raysearch.search.shard_side import LocalShard
from raysearch.storage.kv import MemoryKV
from tests.conftest import debian_docs
from tests.oracle import Oracle, assert_same_ranking, draw_queries


class _Counting(LocalShard):
    """TEST ONLY: counts the calls the coordinator makes."""

    def __init__(self, index, shard, calls):
        super().__init__(index, shard)
        self.calls = calls

    async def stats(self, *args):
        self.calls.append("stats")
        return await super().stats(*args)

    async def search(self, plan, k):
        self.calls.append("search")
        return await super().search(plan, k)

    async def dictionary(self, max_terms):
        self.calls.append("dictionary")
        return await super().dictionary(max_terms)

    async def get_documents(self, doc_ids):
        self.calls.append("get_documents")
        return await super().get_documents(doc_ids)


def _build(docs, shards, settings=None, types=None):
    analyzer = Analyzer()
    indexes = [ShardIndex(MemoryKV()) for _ in range(shards)]
    per_shard, _, _ = split_batch(docs, [], shards, analyzer, types)
    for n, part in per_shard.items():
        indexes[n].apply("b1", part)
    calls: list[str] = []
    target = IndexTarget("test", IndexSettings(**(settings or {})), analyzer,
                         [_Counting(ix, n, calls) for n, ix in enumerate(indexes)])
    return target, indexes, calls


def _search(coordinator, target, **params):
    return asyncio.run(coordinator.search(target, SearchRequest(**params)))


@pytest.mark.parametrize("shards", [1, 3])
def test_searches_equal_the_oracle_on_the_debian_sample(no_ray, shards):
    docs = debian_docs(0, 1500)
    target, _, _ = _build(docs, shards)
    coordinator = SearchCoordinator(SearchLimits())
    oracle = Oracle(docs, Analyzer())
    for q in draw_queries(docs, 30, seed=11):
        result = _search(coordinator, target, q=q, size=10)
        total, top = oracle.top(q, 10)
        assert result["total"] == total, q
        assert_same_ranking(result["hits"], oracle.scores(q), top)


def test_scores_and_totals_do_not_depend_on_the_shard_count(no_ray):
    docs = debian_docs(0, 800)
    one, _, _ = _build(docs, 1)
    four, _, _ = _build(docs, 4)
    for q in draw_queries(docs, 15, seed=5):
        a = _search(SearchCoordinator(SearchLimits()), one, q=q, size=20)
        b = _search(SearchCoordinator(SearchLimits()), four, q=q, size=20)
        assert a["total"] == b["total"]
        assert [(h["id"], h["score"]) for h in a["hits"]] == [(h["id"], h["score"]) for h in b["hits"]]


def test_a_repeated_query_takes_one_round_and_a_write_makes_it_plan_again(no_ray):
    docs = [{"id": f"d{i}", "title": f"alpha {'beta ' * (i % 3)} gamma{i % 5}"} for i in range(60)]
    target, indexes, calls = _build(docs, 3)
    coordinator = SearchCoordinator(SearchLimits())
    first = _search(coordinator, target, q="alpha beta")
    assert calls.count("stats") == 3 and calls.count("search") == 3
    calls.clear()
    again = _search(coordinator, target, q="alpha beta")
    assert calls == ["search"] * 3  # planned from the cache: one round
    assert [(h["id"], h["score"]) for h in again["hits"]] == [(h["id"], h["score"]) for h in first["hits"]]
    assert again["total"] == first["total"]
    # a write to one shard moves its statistics: that shard refuses the cached plan
    new = [{"id": "late", "title": "beta beta beta alpha"}]
    per_shard, _, _ = split_batch(new, [], 3, Analyzer())
    for n, part in per_shard.items():
        indexes[n].apply("b2", part)
    calls.clear()
    after = _search(coordinator, target, q="alpha beta")
    assert calls.count("search") == 6 and calls.count("stats") == 3  # refused, planned afresh, scored
    oracle = Oracle(docs + new, Analyzer())
    total, top = oracle.top("alpha beta", 10)
    assert after["total"] == total
    assert_same_ranking(after["hits"], oracle.scores("alpha beta"), top)


def test_once_statistics_hold_still_every_new_query_takes_one_round(no_ray):
    """The whole term dictionary is loaded in the background (search/stats_cache.py): then
    a query of terms never asked before is planned from it, in one round, and still equals
    the oracle; a term no shard has counts 0; a write makes the shards refuse the plan."""
    docs = debian_docs(0, 600)
    target, indexes, calls = _build(docs, 3)
    oracle = Oracle(docs, Analyzer())
    queries = draw_queries(docs, 12, seed=23)

    async def scenario():
        coordinator = SearchCoordinator(SearchLimits(), stats_settle_s=0.0)
        await coordinator.search(target, SearchRequest(q=queries[0]))
        await coordinator.search(target, SearchRequest(q=queries[1]))  # same versions again: load
        await coordinator.background_done()
        assert calls.count("dictionary") == 3
        for q in queries[2:] + ["zzzunknownterm " + queries[2]]:
            calls.clear()
            result = await coordinator.search(target, SearchRequest(q=q, size=10))
            assert calls == ["search"] * 3, q  # no statistics round
            total, top = oracle.top(q, 10)
            assert result["total"] == total, q
            assert_same_ranking(result["hits"], oracle.scores(q), top)
        new = [{"id": "late", "title": queries[2] + " " + queries[2]}]
        per_shard, _, _ = split_batch(new, [], 3, Analyzer())
        for n, part in per_shard.items():
            indexes[n].apply("b2", part)
        calls.clear()
        after = await coordinator.search(target, SearchRequest(q=queries[2], size=10))
        assert calls.count("stats") == 3  # refused by the shard that moved, planned afresh
        total, top = Oracle(docs + new, Analyzer()).top(queries[2], 10)
        assert after["total"] == total and after["hits"][0]["id"] == "late"
        # over the limit: the shards say so, nothing is loaded, searches take two rounds
        small = SearchCoordinator(SearchLimits(stats_dictionary_max_terms=10), stats_settle_s=0.0)
        for q in queries[:3]:
            await small.search(target, SearchRequest(q=q))
        await small.background_done()
        calls.clear()
        await small.search(target, SearchRequest(q=queries[5]))
        assert calls.count("stats") == 3 and "dictionary" not in calls

    asyncio.run(scenario())


def test_pages_and_the_fetch_phase(no_ray):
    docs = [{"id": f"d{i:03d}", "title": " ".join(["phase"] * (1 + i % 9)) + f" filler{i}"} for i in range(120)]
    target, _, calls = _build(docs, 4)
    coordinator = SearchCoordinator(SearchLimits())
    full = _search(coordinator, target, q="phase", size=120)
    order = [h["id"] for h in full["hits"]]
    calls.clear()
    page = _search(coordinator, target, q="phase", size=10, **{"from": 100})
    assert [h["id"] for h in page["hits"]] == order[100:110]
    assert all(h["document"]["id"] == h["id"] for h in page["hits"])
    assert 1 <= calls.count("get_documents") <= 4  # a deep page is fetched afterwards, per shard
    calls.clear()
    first = _search(coordinator, target, q="phase", size=10)
    assert [h["id"] for h in first["hits"]] == order[:10] and "get_documents" not in calls  # with the query phase


def test_limits_and_empty_queries(no_ray):
    target, _, _ = _build([{"id": "a", "title": "words"}], 2)
    coordinator = SearchCoordinator(SearchLimits(max_size=50, max_window=100, max_query_chars=20))
    with pytest.raises(InvalidRequest, match="size 51"):
        _search(coordinator, target, q="words", size=51)
    with pytest.raises(InvalidRequest, match="from \\+ size"):
        _search(coordinator, target, q="words", size=10, search_after=[1.0, "a"], **{"from": 95})
    with pytest.raises(InvalidRequest, match="characters"):
        _search(coordinator, target, q="w" * 21)
    assert _search(coordinator, target, q="the")["total"] == 0  # only a stop word: nothing to match
    assert _search(coordinator, target, q="*")["total"] == 1  # match-all


def test_typed_fields_filters_sorting_facets_and_highlight(no_ray):
    fields = {"tag": {"type": "keyword"}, "n": {"type": "integer"}, "title": {"type": "text", "boost": 1.0}}
    types = {"tag": "keyword", "n": "integer"}
    docs = [{"id": f"d{i}", "title": f"red {'apple ' * (i % 4)}pie", "tag": "ab"[i % 2], "n": i} for i in range(40)]
    target, _, _ = _build(docs, 3, {"fields": fields}, types)
    coordinator = SearchCoordinator(SearchLimits())
    result = _search(coordinator, target, q="apple", filter={"term": {"tag": "a"}}, sort=[{"n": "desc"}],
                     facets={"tags": {"terms": {"field": "tag"}}}, highlight=True, size=5)
    expected = sorted((d for d in docs if d["tag"] == "a" and d["id"] and d["n"] % 4), key=lambda d: -d["n"])
    assert result["total"] == len(expected)
    assert [h["id"] for h in result["hits"]] == [d["id"] for d in expected[:5]]
    assert [h["sort"][0] for h in result["hits"]] == [d["n"] for d in expected[:5]]
    assert result["facets"]["tags"]["buckets"] == [{"key": "a", "count": len(expected)}]
    assert all("<em>apple</em>" in " ".join(h["highlight"]["title"]) for h in result["hits"])
    # search_after pages on from the last hit, with nothing seen twice
    after = result["hits"][-1]["sort"]
    more = _search(coordinator, target, q="apple", filter={"term": {"tag": "a"}}, sort=[{"n": "desc"}],
                   search_after=after, size=5)
    assert [h["id"] for h in more["hits"]] == [d["id"] for d in expected[5:10]]


def test_explain_adds_up_to_each_hits_score(no_ray):
    docs = [{"id": f"d{i}", "title": f"solar {'panel ' * (1 + i % 3)}power {'grid' if i % 2 else 'cell'}"}
            for i in range(30)]
    fields = {"title": {"type": "text", "boost": 2.0}}
    target, _, _ = _build(docs, 3, {"fields": fields})
    coordinator = SearchCoordinator(SearchLimits())
    result = _search(coordinator, target, q='panel +power -cell "solar panel"', size=5, explain=True)
    assert result["hits"]
    for hit in result["hits"]:
        explanation = hit["explanation"]
        assert explanation["value"] == hit["score"]
        parts = explanation["details"]
        assert {p.get("term") or p.get("phrase") for p in parts} >= {"panel", "power", "solar panel"}
        assert all(p["boost"] == 2.0 and p["tf"] >= 1 and p["field_length"] >= 1 for p in parts)
        assert all(p["idf"] > 0 for p in parts if "term" in p)
        assert abs(sum(p["value"] for p in parts) - hit["score"]) <= 1e-9 * hit["score"]
    plain = _search(coordinator, target, q='panel +power -cell "solar panel"', size=5)
    assert [(h["id"], h["score"]) for h in plain["hits"]] == [(h["id"], h["score"]) for h in result["hits"]]
    assert "explanation" not in plain["hits"][0]
