"""Shard scoring (ShardIndex + executor, no Ray, in-memory KV) against the independent
brute-force BM25 in tests/oracle.py: every score within 1e-6 relative, same totals."""


from raysearch.analysis.analyzer import Analyzer
from raysearch.index.batch import split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.search.executor import execute
from raysearch.search.plan import GlobalStats, analyze_clauses, build_plan, stats_request
from raysearch.search.query import parse_query
from raysearch.storage.kv import MemoryKV
from tests.conftest import CORPORA, load_jsonl
from tests.integration.helpers import draw_queries
from tests.oracle import Oracle, assert_same_ranking

CRAN = CORPORA / "cran" / "docs.jsonl.gz"


def test_scores_match_the_bruteforce_oracle_on_two_shards(no_ray):
    docs = load_jsonl(CRAN, limit=400)
    analyzer = Analyzer()
    shards = [ShardIndex(MemoryKV()), ShardIndex(MemoryKV())]
    per_shard, _, _ = split_batch(docs, [], 2, analyzer)
    for n, part in per_shard.items():
        shards[n].apply("b", part)
    oracle = Oracle(docs, analyzer)
    for q in draw_queries(docs, 40, seed=1):
        clauses = analyze_clauses(parse_query(q, lambda f: False), analyzer, [("_all", 1.0)])
        req = stats_request(clauses)
        parts = [{"fields": s.field_stats(req.fields), "pairs": req.pairs, "doc_freqs": s.doc_freqs(req.pairs),
                  "prefixes": [], "expansions": []} for s in shards]
        plan = build_plan(clauses, GlobalStats.merge(parts, 10))
        results = [execute(s, plan, 10) for s in shards]
        hits = sorted((h[:2] for r in results for h in r["hits"]), key=lambda h: (-h[0], h[1]))[:10]
        total, top = oracle.top(q, 10)
        assert sum(r["total"] for r in results) == total, q
        assert_same_ranking([{"id": d, "score": s} for s, d in hits], oracle.scores(q), top)
