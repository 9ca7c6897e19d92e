"""Facets and filters read a single-valued column per document (Column.at_docs) and
filters' masks are cached per shard until its documents change: both must answer exactly
what reading the column's (document, value) pairs answers, under updates and deletes.
Unit test: no Ray, the in-memory KV."""

from __future__ import annotations

import random

import numpy as np
import pytest

from raysearch.analysis.analyzer import Analyzer
from raysearch.index.batch import ShardBatch, split_batch
from raysearch.index.doc_values import Column
from raysearch.index.shard_index import ShardIndex
from raysearch.search import facets, filters
from raysearch.storage.kv import MemoryKV

TYPES = {"section": "keyword", "size": "integer", "score": "float", "tags": "keyword", "when": "date",
         "ok": "boolean"}
FACETS = {"sections": ["terms", "section", 50], "sizes": ["terms", "size", 50], "size_stats": ["stats", "size"],
          "score_stats": ["stats", "score"], "score_hist": ["histogram", "score", 2.5],
          "size_hist": ["histogram", "size", 7], "tags": ["terms", "tags", 50], "ok": ["terms", "ok", 2],
          "when": ["stats", "when"]}
FILTERS = [
    {"range": {"size": {"gte": 10, "lt": 60}}},
    {"range": {"score": {"gt": 3.5}}},
    {"terms": {"size": [3, 17, 44]}},
    {"exists": {"field": "score"}},
    {"exists": {"field": "section"}},
    {"term": {"ok": True}},
    {"range": {"when": {"gte": "2024-03-01"}}},
    {"not": {"range": {"size": {"lte": 30}}}},
    {"and": [{"term": {"section": "s1"}}, {"range": {"size": {"gt": 5}}}]},
    {"or": [{"range": {"section": {"gte": "s2"}}}, {"exists": {"field": "tags"}}]},
]


def _doc(rng: random.Random, i: int, version: int) -> dict:
    doc = {"id": f"d{i}", "title": f"apple {version}", "section": f"s{rng.randrange(5)}", "size": rng.randrange(80)}
    if rng.random() < 0.7:
        doc["score"] = round(rng.uniform(-5, 20), 2)
    if rng.random() < 0.3:
        doc["tags"] = rng.sample(["red", "green", "blue", "sour"], rng.randint(1, 3))
    if rng.random() < 0.5:
        doc["ok"] = rng.random() < 0.5
    if rng.random() < 0.6:
        doc["when"] = f"2024-0{rng.randint(1, 6)}-1{rng.randint(0, 9)}"
    return doc


def _batch(docs: list[dict]) -> ShardBatch:
    per_shard, _, _ = split_batch(docs, [], 1, Analyzer(), TYPES)
    return per_shard[0]


def _shard(rng: random.Random) -> ShardIndex:
    shard = ShardIndex(MemoryKV())
    shard.apply("first", _batch([_doc(rng, i, 0) for i in range(300)]))
    for r in range(1, 12):
        shard.apply(f"update-{r}", _batch([_doc(rng, i, r) for i in rng.sample(range(300), 60)]))
        shard.apply(f"delete-{r}", ShardBatch(deletes=[f"d{rng.randrange(300)}" for _ in range(5)]))
    return shard


def _through_pairs(monkeypatch):
    """Make every column read as pairs (as a column with lists is read)."""
    monkeypatch.setattr(Column, "at_docs", lambda self, n: None)


def _parsed(spec: dict) -> list:
    return filters.parse_filter(spec, TYPES)


def test_single_valued_columns_are_read_per_document_and_lists_are_not(no_ray):
    shard = _shard(random.Random(3))
    assert shard.values.column("tags").multi and shard.values.column("tags").at_docs(10) is None
    n = len(shard.stats.doc_ids)
    for field in ("section", "size", "score", "ok", "when"):
        column = shard.values.column(field)
        assert not column.multi, field
        dense = column.at_docs(n)
        assert len(dense) == n
        docs, vals = column.arrays()
        expected = np.full(n, np.nan)
        expected[docs] = vals
        np.testing.assert_array_equal(dense, expected)


def test_facets_read_per_document_equal_the_pairs(no_ray, monkeypatch):
    rng = random.Random(5)
    shard = _shard(rng)
    n = len(shard.stats.doc_ids)
    live = shard.stats.live_mask(n)
    masks = [live, live & (np.arange(n) % 3 == 0), np.zeros(n, dtype=bool),
             live & np.array([rng.random() < 0.05 for _ in range(n)])]
    per_document = [facets.shard_partials(FACETS, shard, m) for m in masks]
    _through_pairs(monkeypatch)
    as_pairs = [facets.shard_partials(FACETS, shard, m) for m in masks]
    assert per_document == as_pairs
    for partial in as_pairs:  # ints stay ints, floats floats (they are displayed as such)
        if partial["size_stats"][0]:
            assert all(isinstance(v, int) for v in partial["size_stats"][1:3])
            assert all(isinstance(k, int) for k, _ in partial["sizes"])


def test_filters_read_per_document_equal_the_pairs(no_ray, monkeypatch):
    shard = _shard(random.Random(11))
    n = len(shard.stats.doc_ids)
    per_document = [filters.evaluate(_parsed(spec), shard, n).copy() for spec in FILTERS]
    filters._masks.clear()
    _through_pairs(monkeypatch)
    for spec, mask in zip(FILTERS, per_document):
        assert mask.any(), spec  # each filter selects something here
        np.testing.assert_array_equal(mask, filters.evaluate(_parsed(spec), shard, n), err_msg=str(spec))


def test_a_filters_mask_is_reused_until_the_documents_change(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("first", _batch([{"id": f"d{i}", "title": "apple", "size": i} for i in range(50)]))
    node = _parsed({"range": {"size": {"gte": 40}}})
    n = len(shard.stats.doc_ids)
    first = filters.evaluate(node, shard, n)
    assert filters.evaluate(node, shard, n) is first  # the cached mask
    with pytest.raises(ValueError):
        first[0] = True  # shared between searches: read-only
    shard.apply("delete", ShardBatch(deletes=["d45"]))  # no new number: only the version moves
    after = filters.evaluate(node, shard, len(shard.stats.doc_ids))
    assert after is not first and int(after.sum()) == 9 and not after[45]
    shard.apply("more", _batch([{"id": "d99", "title": "apple", "size": 99}]))
    grown = filters.evaluate(node, shard, len(shard.stats.doc_ids))
    assert int(grown.sum()) == 10 and grown[-1]


def test_the_mask_cache_holds_at_most_its_bytes(no_ray, monkeypatch):
    shard = ShardIndex(MemoryKV())
    shard.apply("first", _batch([{"id": f"d{i}", "title": "apple", "size": i} for i in range(1000)]))
    n = len(shard.stats.doc_ids)
    monkeypatch.setattr(filters, "MASK_CACHE_BYTES", 5 * n)
    for low in range(40):
        filters.evaluate(_parsed({"range": {"size": {"gte": low}}}), shard, n)
    cached = filters._masks[shard]
    assert len(cached) == 5 and sum(entry[2].nbytes for entry in cached.values()) <= 5 * n
    assert repr(_parsed({"range": {"size": {"gte": 39}}})) in cached  # the latest kept


def test_masks_of_an_older_version_are_dropped_when_a_new_one_is_cached(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("first", _batch([{"id": f"d{i}", "title": "apple", "size": i} for i in range(100)]))
    n = len(shard.stats.doc_ids)
    for low in range(10):
        filters.evaluate(_parsed({"range": {"size": {"gte": low}}}), shard, n)
    assert len(filters._masks[shard]) == 10
    shard.apply("delete", ShardBatch(deletes=["d5"]))  # every cached mask is of the old version now
    filters.evaluate(_parsed({"range": {"size": {"gte": 50}}}), shard, len(shard.stats.doc_ids))
    cached = filters._masks[shard]
    assert list(cached) == [repr(_parsed({"range": {"size": {"gte": 50}}}))]


def test_an_earlier_readers_per_document_values_never_change(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("first", _batch([{"id": f"d{i}", "title": "apple", "size": i} for i in range(10)]))
    column = shard.values.column("size")
    held = column.at_docs(10)
    before = held.copy()
    shard.apply("second", _batch([{"id": f"e{i}", "title": "apple", "size": 100 + i} for i in range(10)]))
    grown = shard.values.column("size").at_docs(20)
    np.testing.assert_array_equal(held, before)
    assert grown[:10].tolist() == before.tolist() and grown[10:].tolist() == [100.0 + i for i in range(10)]
