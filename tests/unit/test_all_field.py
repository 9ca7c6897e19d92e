"""A derived `_all` (index/all_field.py) against a stored one: the same statistics, the same
hits with the same scores for plain, AND, phrase and prefix queries, through inserts,
re-indexing and deletes, after reopening from a scan and from a snapshot, and after a
restore from the mirrored entries; and what stays of each mode (no `_all` blocks written,
legacy records read as stored)."""

from __future__ import annotations

import asyncio
import random

import pytest

from raysearch.analysis.analyzer import ALL_FIELD, Analyzer
from raysearch.index import keys as K
from raysearch.index.all_field import expand_terms, merge_arrays, merge_postings
from raysearch.index.batch import split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.indexmeta import parse
from raysearch.models import IndexSettings, SearchRequest
from raysearch.search.coordinator import IndexTarget, SearchCoordinator, SearchLimits
from raysearch.search.shard_side import LocalShard
from raysearch.storage.kv import MemoryKV
from tests.conftest import debian_docs

TYPES = {"section": "keyword", "priority": "keyword", "installed_size": "integer"}
SETTINGS = {"fields": {name: {"type": t} for name, t in TYPES.items()}}


def _history(docs: list[dict]) -> list[tuple[list[dict], list[str]]]:
    """Batches of inserts, then re-indexed documents (new titles) and deletes, at random."""
    rng = random.Random(7)
    batches = [(docs[i:i + 150], []) for i in range(0, len(docs), 150)]
    for r in range(3):
        picked = rng.sample(docs, 80)
        changed = [{**d, "title": f"{d.get('title', '')} revised {r} package"} for d in picked[:60]]
        batches.append((changed, [d["id"] for d in picked[60:]]))
    return batches


def _shards(history, shards: int, derived_all: bool) -> list[ShardIndex]:
    analyzer = Analyzer()
    indexes = [ShardIndex(MemoryKV()) for _ in range(shards)]
    for b, (docs, deletes) in enumerate(history):
        per_shard, _, failed = split_batch(docs, deletes, shards, analyzer, TYPES, derived_all=derived_all)
        assert not failed
        for n, part in per_shard.items():
            indexes[n].apply(f"b{b}", part)
    return indexes


QUERIES = [{"q": "game"}, {"q": "python library"}, {"q": "python library", "operator": "and"},
           {"q": "\"command line\""}, {"q": "\"revised 1 package\""}, {"q": "lib*"}, {"q": "revised"},
           {"q": "utils", "size": 30}, {"q": "free software", "size": 50, "from": 5},
           {"q": "\"command line\" tool", "explain": True}]


def _answers(indexes: list[ShardIndex]) -> list:
    target = IndexTarget("t", IndexSettings(**SETTINGS), Analyzer(),
                         [LocalShard(ix, n) for n, ix in enumerate(indexes)])
    coordinator = SearchCoordinator(SearchLimits())
    out = []
    for params in QUERIES:
        got = asyncio.run(coordinator.search(target, SearchRequest(**params)))
        out.append((got["total"], [(h["id"], round(h["score"], 9), h.get("explanation")) for h in got["hits"]]))
    return out


@pytest.fixture(scope="module")
def history():
    return _history(debian_docs(0, 900))


@pytest.mark.parametrize("shards", [1, 3])
def test_derived_all_answers_and_statistics_equal_the_stored(history, shards):
    stored = _shards(history, shards, derived_all=False)
    derived = _shards(history, shards, derived_all=True)
    for a, b in zip(stored, derived):
        assert {k: v for k, v in a.stats.df.items() if k[0] == ALL_FIELD} == \
            {k: v for k, v in b.stats.df.items() if k[0] == ALL_FIELD}
        assert a.stats.fields == b.stats.fields and a.stats.term_counts == b.stats.term_counts
        # nothing of `_all` is written where it is derived
        assert not any(k.startswith(K.term_prefix(ALL_FIELD, "")[:-1]) for k, _ in b.data_items())
        assert any(k.startswith(K.term_prefix(ALL_FIELD, "")[:-1]) for k, _ in a.data_items())
        assert b.all_sources == {"title", "body", "version", "maintainer", "architecture"} and not a.all_sources
    want = _answers(stored)
    assert all(total for total, _ in want)  # every query matches something: the comparison means something
    assert any(hit[2] for _, hits in want for hit in hits)  # explanations (tf, dl, phrase frequency) compared too
    assert _answers(derived) == want


def test_derived_all_survives_reopen_snapshot_and_restore(history):
    stored = _shards(history, 2, derived_all=False)
    derived = _shards(history, 2, derived_all=True)
    want = _answers(stored)
    # reopened by a scan of the T entries
    rescanned = [ShardIndex(ix.kv) for ix in derived]
    assert all(ix.opened_from == "scan" for ix in rescanned)
    assert _answers(rescanned) == want
    # reopened from a snapshot
    for ix in rescanned:
        ix.write_snapshot()
    from_snapshot = [ShardIndex(ix.kv) for ix in rescanned]
    assert all(ix.opened_from == "snapshot" for ix in from_snapshot)
    assert _answers(from_snapshot) == want
    for a, b in zip(derived, from_snapshot):
        live = b.stats.live_mask(len(a.stats.doc_ids))  # (a scan knows nothing of dead numbers)
        assert live.sum() > 100 and (a.stats.all_lengths[:len(live)][live] == b.stats.all_lengths[:len(live)][live]).all()
    # rebuilt from the mirrored entries (what a restore from MongoDB replays)
    restored = []
    for ix in derived:
        fresh = ShardIndex(MemoryKV())
        fresh.restore(list(ix.data_items()))
        restored.append(fresh)
    assert _answers(restored) == want


def test_legacy_records_and_new_indexes():
    """An index record written before `all_field` existed keeps its stored `_all`; new
    indexes derive it."""
    legacy = {"_id": "old", "shards": 2, "settings": {"shards": 2, "fields": {}}}
    assert parse(legacy)[0].all_field == "indexed"
    assert IndexSettings().all_field == "derived"
    assert parse({"_id": "new", "shards": 2, "settings": IndexSettings(shards=2).stored()})[0].all_field == "derived"


def test_merges():
    lengths = __import__("numpy").array([5, 6, 7, 8, 9], dtype="int32")
    np = __import__("numpy")
    docs, tfs, dls = merge_arrays([(np.array([1, 3]), np.array([1.0, 2.0])), (np.array([0, 3, 4]), np.array([1.0, 1.0, 4.0]))],
                                  lengths)
    assert docs.tolist() == [0, 1, 3, 4] and tfs.tolist() == [1.0, 1.0, 3.0, 4.0] and dls.tolist() == [5, 6, 8, 9]
    merged = merge_postings([{3: (2, 4, [0, 7])}, {3: (1, 3, [2]), 4: (1, 9, [0])}], lengths)
    assert merged[3][0] == 3 and merged[3][1] == 8 and merged[3][2][:2] == [0, 7] and merged[3][2][2] > 7 + 100
    assert merged[4][1] == 9
    indexed = [["title", 2, ["a", "b"]], [ALL_FIELD, 5, None], ["body", 3, ["b", "c"]], ["section", 1, ["x"]]]
    assert expand_terms(indexed, {"title", "body"})[1] == [ALL_FIELD, 5, ["a", "b", "c"]]


def test_a_batch_of_stop_words_only():
    """Text fields without one indexed token: `_all` has no terms to count (a crash here
    failed the whole batch, at every attempt)."""
    part = split_batch([{"id": "a", "title": "the of", "body": "and"}, {"id": "b", "section": "x"}], [], 1,
                       Analyzer(), TYPES)[0][0]
    assert part.text_fields == ["body", "title"] and part.all_terms == [] and part.all_lengths == [0, 0]
    shard = ShardIndex(MemoryKV())
    shard.apply("b1", part)
    assert shard.doc_count() == 2 and shard.all_sources == {"body", "title"}
