"""ShardIndex on the in-memory KV (unit test: no Ray, no RocksDB)."""

from raysearch.analysis.analyzer import Analyzer
from raysearch.index.batch import split_batch
from raysearch.index.shard_index import ShardDoc, ShardIndex
from raysearch.search.executor import execute
from raysearch.search.plan import GlobalStats, analyze_clauses, build_plan, prefix_pairs, stats_request
from raysearch.search.query import parse_query
from raysearch.storage.kv import MemoryKV


def _docs(docs):
    per_shard, _, _ = split_batch(docs, [], 1, Analyzer())
    return [ShardDoc(*d) for d in per_shard[0][0]]


def _search(shard, q):
    clauses = analyze_clauses(parse_query(q, lambda f: f in {"title", "body"}), Analyzer(), [("_all", 1.0)])
    req = stats_request(clauses)
    part = {"fields": shard.field_stats(req.fields), "pairs": req.pairs, "doc_freqs": shard.doc_freqs(req.pairs),
            "prefixes": req.prefixes, "expansions": [shard.expand_prefix(f, p, 10) for f, p in req.prefixes]}
    stats = GlobalStats.merge([part], 10)
    extra = prefix_pairs(stats)
    prefix_dfs = dict(zip(extra, shard.doc_freqs(extra)))
    return execute(shard, build_plan(clauses, stats, prefix_dfs), 10)


def test_apply_is_idempotent_and_reindex_replaces(no_ray):
    shard = ShardIndex(MemoryKV())
    op1 = shard.apply("b1", _docs([{"id": "a", "title": "red apple"}, {"id": "b", "title": "green apple"}]))
    assert shard.apply("b1", _docs([{"id": "a", "title": "ignored"}])) == op1
    assert shard.doc_count() == 2
    shard.apply("b2", _docs([{"id": "a", "title": "blue sky"}]))
    assert shard.doc_count() == 2
    assert _search(shard, "red")[0] == 0
    assert _search(shard, "blue")[1][0][1] == "a"
    assert shard.doc_freqs([("_all", "appl")]) == [1]
    shard.apply("b3", [], deletes=["a", "b", "missing"])
    assert shard.doc_count() == 0 and _search(shard, "apple")[0] == 0
    assert list(shard.data_items()) == [(k, v) for k, v in shard.data_items() if k[:1] == b"A"]


def test_change_log_drain_and_watermark(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("b1", _docs([{"id": "a", "title": "one"}]))
    entries, log = shard.collect_changes(limit=3)  # whole opstamps: all of op 1
    assert len(log) == 1 and len(entries) > 3 and shard.persisted_upto() == 0
    shard.apply("b2", _docs([{"id": "b", "title": "two"}]))
    shard.ack_changes(log)
    assert shard.persisted_upto() == 1  # op 2 still pending
    assert shard.pending_changes() > 0
    entries, log = shard.collect_changes(limit=10_000)
    shard.ack_changes(log)
    assert shard.persisted_upto() == 2 and shard.pending_changes() == 0


def test_restore_from_entries_reproduces_the_store(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("b1", _docs([{"id": "a", "title": "one two"}, {"id": "b", "title": "two"}]))
    shard.apply("b2", [], deletes=["a"])
    mirrored = []
    while True:
        entries, log = shard.collect_changes(limit=1)
        if not log:
            break
        mirrored.extend(entries)
        shard.ack_changes(log)
    copy = ShardIndex(MemoryKV())
    copy.restore(mirrored)
    assert list(copy.data_items()) == list(shard.data_items())
    assert copy.last_opstamp == 2


def test_query_operators(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("b", _docs([
        {"id": "1", "title": "fast search engine", "body": "python"},
        {"id": "2", "title": "slow search", "body": "engine python"},
        {"id": "3", "title": "search party"},
    ]))
    assert _search(shard, "search")[0] == 3
    assert {d for _, d in _search(shard, "+engine -slow")[1]} == {"1"}
    assert {d for _, d in _search(shard, '"search engine"')[1]} == {"1"}
    assert {d for _, d in _search(shard, "body:python")[1]} == {"1", "2"}
    assert {d for _, d in _search(shard, "par*")[1]} == {"3"}
