"""The posting cache's rewarm (index/posting_cache.py, ShardIndex.rewarm): lists queries had
cached and a write made stale are read again once the shard is idle, and what is cached
then is the list as it is after the write (its new documents in it), never the stale one.
Unit test: ShardIndex on the in-memory KV, no Ray."""

from __future__ import annotations

import numpy as np

from raysearch.analysis.analyzer import Analyzer
from raysearch.index import keys as K
from raysearch.index.batch import split_batch
from raysearch.index.posting_cache import REWARM_MAX_LISTS, PostingArrays, PostingCache
from raysearch.index.shard_index import ShardIndex
from raysearch.storage.kv import MemoryKV


def _apply(shard: ShardIndex, key: str, docs: list[dict]) -> None:
    per_shard, _, failed = split_batch(docs, [], 1, Analyzer())
    assert not failed
    shard.apply(key, per_shard[0])


def _fresh(shard: ShardIndex, field: str, term: str):
    """The list as RocksDB holds it now, bypassing the cache."""
    return shard._columns(K.term_prefix(field, term))


def test_a_list_a_write_made_stale_is_read_again_with_the_write_in_it(no_ray):
    shard = ShardIndex(MemoryKV())
    _apply(shard, "b1", [{"id": f"a{i}", "title": "apple pie" if i % 2 else "apple"} for i in range(50)])
    for field, term in (("title", "appl"), ("title", "pie"), ("_all", "appl")):
        shard.posting_arrays(field, term)  # cached, as a query leaves them
    assert shard.cache.dropped_count() == 0
    _apply(shard, "b2", [{"id": f"b{i}", "title": "apple"} for i in range(30)])  # gains 30 documents
    assert shard.cache.get(K.term_prefix("title", "appl")) is None  # stale: dropped
    assert shard.cache.get(K.term_prefix("title", "pie")) is not None  # untouched: kept
    assert shard.cache.dropped_count() == 2  # title and _all of "appl"
    assert shard.rewarm(budget_s=5.0) == 2
    for field in ("title", "_all"):
        cached = shard.cache.get(K.term_prefix(field, "appl"))
        assert cached is not None and len(cached[0]) == 80
    for got, want in zip(shard.cache.get(K.term_prefix("title", "appl")), _fresh(shard, "title", "appl")):
        assert np.array_equal(got, want)
    assert shard.cache.dropped_count() == 0 and shard.rewarm(budget_s=5.0) == 0


def test_a_cold_list_is_not_rewarmed_and_a_restore_forgets_what_was_hot(no_ray):
    shard = ShardIndex(MemoryKV())
    _apply(shard, "b1", [{"id": f"a{i}", "title": "apple pie"} for i in range(10)])
    _apply(shard, "b2", [{"id": f"b{i}", "title": "apple pie"} for i in range(10)])
    assert shard.cache.dropped_count() == 0  # never read by a query: nothing to warm
    shard.posting_arrays("title", "pie")
    _apply(shard, "b3", [{"id": "c", "title": "pie"}])
    assert shard.cache.dropped_count() == 1
    shard.cache.invalidate()  # what a restore does: other data, nothing of it hot
    assert shard.cache.dropped_count() == 0


def test_the_cache_remembers_a_bounded_number_of_dropped_lists_the_latest_write_s_first():
    cache = PostingCache(10**9)
    empty = np.zeros(0)
    keys = [f"k{i}".encode() for i in range(REWARM_MAX_LISTS + 10)]
    for key in keys:
        cache.put(key, PostingArrays(empty, empty, empty), cache.generation)
    cache.invalidate(keys[:-1])
    cache.invalidate(keys[-1:])  # a later write
    assert cache.dropped_count() == REWARM_MAX_LISTS
    assert cache.take_dropped(1) == [keys[-1]]
    assert len(set(cache.take_dropped(10**6))) == REWARM_MAX_LISTS - 1
    assert cache.dropped_count() == 0
