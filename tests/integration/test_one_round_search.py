"""One-round searches from the ingress's cache of summed statistics (search/stats_cache.py).

A repeated query whose statistics the replica has summed before goes to the shards in one
round (no statistics calls) and answers exactly as the two-round path did; after a write
changes a shard's statistics, the shard answers "stale" and the ingress plans again from
fresh statistics, so the answer follows the write exactly (the brute-force oracle).
Measured at the actor boundary of an in-cluster SearchService (the ingress's own code)."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest

from raysearch.analysis.analyzer import Analyzer
from raysearch.actors.clients import RayShard
from tests.conftest import wait_operation
from tests.integration.helpers import ShardSpy
from tests.oracle import Oracle, assert_same_ranking

INDEX = "one-round"


@pytest.fixture(scope="module")
def spied(http):
    import raysearch

    docs = [{"id": f"d{i:03d}", "title": f"round{i % 7} trip {'cache ' * (1 + i % 4)}", "body": f"filler{i % 11}"}
            for i in range(200)]
    http.delete(f"/indexes/{INDEX}")
    assert http.put(f"/indexes/{INDEX}", json={"shards": 4}).status_code == 201
    assert wait_operation(http, http.post(f"/bulk-indexing/{INDEX}", json=docs).json()["operation_id"])[
        "status"] == "completed"
    rs = raysearch.connect()
    service = rs.service
    meta, target = service.catalog.load(INDEX)
    calls: list = []
    # through Ray, where the spy sees the calls (the wire, actors/wire.py, is tested on its own)
    spies = [RayShard(ShardSpy(shard.handle, n, calls), wire=False) for n, shard in enumerate(target.shards)]
    service.catalog._indexes[INDEX] = (meta, dataclasses.replace(target, shards=spies))
    service.catalog._checked[INDEX] = math.inf  # keep the spied handles
    yield rs, calls, docs
    http.delete(f"/indexes/{INDEX}")


def _search(rs, calls, q):
    calls.clear()
    result = rs.search(INDEX, q, size=10)
    kinds = [c[0] for c in calls]
    return result, kinds.count("stats"), [c for c in calls if c[0] == "search"]


def _assert_oracle(result, docs, q):
    oracle = Oracle(docs, Analyzer())
    total, top = oracle.top(q, 10)
    assert result["total"] == total
    assert_same_ranking(result["hits"], oracle.scores(q), top)


def test_a_repeated_query_takes_one_round_and_a_write_makes_it_plan_again(spied, http):
    rs, calls, docs = spied
    q = "round3 cache trip"
    first, stats_calls, searches = _search(rs, calls, q)
    assert stats_calls == 4 and len(searches) == 4  # statistics round, then the query phase
    _assert_oracle(first, docs, q)
    again, stats_calls, searches = _search(rs, calls, q)
    assert stats_calls == 0 and len(searches) == 4  # one round: planned from the cache
    assert all(plan.versions is not None and not answer.get("stale") for _, _, (plan, _), answer in searches)
    assert [(h["id"], h["score"]) for h in again["hits"]] == [(h["id"], h["score"]) for h in first["hits"]]
    assert again["total"] == first["total"]
    # a term the cache has not seen: a statistics round again
    _, stats_calls, _ = _search(rs, calls, "round3 filler5")
    assert stats_calls == 4

    # a write changes df and field lengths on one shard: the cached plan is refused there
    new = {"id": "late", "title": "round3 round3 cache cache cache trip", "body": "filler0"}
    op = http.put(f"/indexes/{INDEX}/documents/late", json=new).json()
    assert op["status"] in ("indexing", "persisting", "completed"), op
    after, stats_calls, searches = _search(rs, calls, q)
    assert any(answer.get("stale") for _, _, _, answer in searches)  # the refused first attempt
    assert stats_calls == 4 and len(searches) == 8  # then statistics and scoring again
    docs_now = docs + [new]
    _assert_oracle(after, docs_now, q)
    assert "late" in [h["id"] for h in after["hits"]]
    # and that fresh plan is cached in turn
    cached, stats_calls, _ = _search(rs, calls, q)
    assert stats_calls == 0 and [(h["id"], h["score"]) for h in cached["hits"]] == \
        [(h["id"], h["score"]) for h in after["hits"]]


def test_once_statistics_hold_still_a_query_never_asked_takes_one_round(spied):
    """The whole term dictionary, loaded from every shard actor in the background once the
    statistics held still (two rounds a second apart at the same versions), plans queries
    of terms never asked before: no statistics round, the oracle's answer. (Runs after the
    test above, whose write of "late" the index holds.)"""
    rs, calls, docs = spied
    _search(rs, calls, "round1 filler2")
    time.sleep(1.2)
    _search(rs, calls, "round2 filler3")  # the same versions a second later: the load starts
    rs._run(rs.service.coordinator.background_done())
    assert sorted(c[1] for c in calls if c[0] == "dictionary") == [0, 1, 2, 3]  # from each shard, once
    for q in ("round4 filler7 trip", "round5 cache", "filler9 nosuchterm"):
        result, stats_calls, searches = _search(rs, calls, q)
        assert stats_calls == 0 and len(searches) == 4, q
        _assert_oracle(result, docs + [{"id": "late", "title": "round3 round3 cache cache cache trip",
                                        "body": "filler0"}], q)
