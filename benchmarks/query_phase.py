"""The shard's query phase in process, on one large shard: pruned (MaxScore) against
scoring every match, on the same queries, and the results compared.

    python benchmarks/query_phase.py --copies 4           # 4 x the Debian corpus in one shard
    python benchmarks/query_phase.py --reuse --structured # and run.py's filtered, sorted, faceted searches
    python benchmarks/query_phase.py --reuse --all-words  # and the queries as ANDs: intersection vs general path

Builds (or reuses, with --reuse) one RocksDB shard holding the Debian corpus `--copies`
times under new ids (typed fields as run.py), drains its change log as persistence would,
then times `execute` for `--queries` (300) queries drawn from the corpus (1-4 words each, OR'ed, top 10)
with pruning on and off, three rounds each. Prints p50 / p90 / p99 per mode, how many of
the queries could be pruned, and checks that both modes return identical hits and totals.
No Ray, no MongoDB: this is the shard's own cost, the part of a search that grows with
the index.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raysearch.analysis.analyzer import Analyzer  # noqa: E402
from raysearch.index.batch import split_batch  # noqa: E402
from raysearch.index.shard_index import ShardIndex  # noqa: E402
from raysearch.search import executor, facets, filters, sorting  # noqa: E402
from raysearch.search.plan import GlobalStats, QueryPlan, analyze_clauses, build_plan, stats_request  # noqa: E402
from raysearch.search.query import parse_query  # noqa: E402
from raysearch.storage.rocks import RocksKV  # noqa: E402

CORPUS = ROOT / "benchmarks" / "data" / "debian" / "docs.jsonl.gz"
TYPES = {"section": "keyword", "priority": "keyword", "installed_size": "integer", "size": "integer"}
# run.py's structured searches (structured_latency), as plan options
STRUCTURED = {
    "filtered": {"filter": {"and": [{"terms": {"priority": ["optional", "standard"]}},
                                    {"range": {"installed_size": {"gte": 100}}}]}},
    "sorted_by_field": {"sort": [{"section": "asc"}, {"size": "desc"}]},
    "faceted": {"facets": {"sections": {"terms": {"field": "section", "size": 10}},
                           "sizes": {"stats": {"field": "installed_size"}},
                           "big": {"histogram": {"field": "size", "interval": 1_000_000}}}},
}


def build(path: Path, copies: int, docs: list[dict]) -> None:
    analyzer = Analyzer()
    batches = []
    for i in range(0, len(docs), 250):
        per_shard, _, _ = split_batch(docs[i:i + 250], [], 1, analyzer, TYPES)
        batches.append(per_shard[0])
    shutil.rmtree(path, ignore_errors=True)
    kv = RocksKV(str(path), sync=False)
    shard = ShardIndex(kv)
    started = time.perf_counter()
    for c in range(copies):
        for j, batch in enumerate(batches):
            if c:
                batch = dataclasses.replace(batch, doc_ids=[f"{d}~{c}" for d in batch.doc_ids])
            shard.apply(f"c{c}b{j}", batch)
        while True:  # drain the change log as persistence would
            _, log = shard.collect_changes(50_000)
            if not log:
                break
            shard.ack_changes(log)
        print(f"built copy {c + 1}: {shard.doc_count():,} documents, {time.perf_counter() - started:.0f} s",
              flush=True)
    shard.write_snapshot()
    kv.close()


def queries_from(docs: list[dict], count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        words = (docs[rng.randrange(len(docs))].get("title", "") + " "
                 + docs[rng.randrange(len(docs))].get("body", "")).split()
        if len(words) >= 4:
            out.append(" ".join(rng.sample(words, rng.randint(1, 4))))
    return out


def plan_for(shard: ShardIndex, analyzer: Analyzer, q: str, operator: str = "or", **options) -> QueryPlan:
    clauses = analyze_clauses(parse_query(q, lambda f: False), analyzer, [("_all", 1.0)], operator)
    req = stats_request(clauses)
    part = {"fields": shard.field_stats(req.fields), "pairs": req.pairs, "doc_freqs": shard.doc_freqs(req.pairs),
            "prefixes": [], "expansions": []}
    return build_plan(clauses, GlobalStats.merge([part], 128), {}, **options)


def structured_options(kind: str) -> dict:
    spec = STRUCTURED[kind]
    return {"filter": filters.parse_filter(spec.get("filter"), TYPES),
            "sort": sorting.parse_sort(spec.get("sort"), TYPES) if "sort" in spec else [],
            "facets": facets.parse_facets(spec.get("facets"), TYPES)}


def timed(shard: ShardIndex, plans: list[QueryPlan], k: int) -> tuple[list[float], list[dict]]:
    times, results = [], []
    for plan in plans:
        t0 = time.perf_counter()
        results.append(executor.execute(shard, plan, k))
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times), results


def _percentiles(t: list[float]) -> str:
    """p50, p90, p99 of sorted times (ms)."""
    m = len(t)
    return f"p50 {t[m // 2]:6.2f}  p90 {t[int(m * 0.9)]:6.2f}  p99 {t[min(m - 1, int(m * 0.99))]:6.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--path", default="/tmp/raysearch-query-phase-shard")
    ap.add_argument("--reuse", action="store_true", help="use the shard already at --path")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--queries", type=int, default=300, help="queries drawn from the corpus")
    ap.add_argument("--one-term", action="store_true",
                    help="time only the drawn queries that analyse to a single term (a search box's most common)")
    ap.add_argument("--structured", action="store_true",
                    help="also time run.py's filtered, sorted and faceted searches on the same queries")
    ap.add_argument("--all-words", action="store_true",
                    help="also time the queries as ANDs (operator and): over the intersection of their "
                         "lists (executor._execute_conjunction) against the general path")
    ap.add_argument("--slowest", type=int, default=0,
                    help="also list the N prunable queries slowest when pruned, with both times")
    args = ap.parse_args()
    if not CORPUS.exists():
        sys.exit(f"{CORPUS} is missing: python scripts/build_debian_corpus.py")
    docs = [json.loads(line) for line in gzip.open(CORPUS, "rt")]
    path = Path(args.path)
    if not args.reuse:
        build(path, args.copies, docs)
    kv = RocksKV(str(path), sync=False)
    shard = ShardIndex(kv)
    analyzer = Analyzer()
    queries = queries_from(docs, args.queries)
    plans = [plan_for(shard, analyzer, q) for q in queries]
    if args.one_term:
        kept = [(q, p) for q, p in zip(queries, plans) if len(p.clauses) == 1]
        queries, plans = [q for q, _ in kept], [p for _, p in kept]
    prunable = sum(executor._prunable_terms(p, args.k) is not None for p in plans)
    print(f"shard: {shard.doc_count():,} documents (opened from {shard.opened_from}); {len(plans)} queries, "
          f"{prunable} prunable (two or more terms), top {args.k}")

    exhaustive_terms = executor._prunable_terms
    for round_no in range(3):
        executor._prunable_terms = lambda plan, k: None
        off, off_results = timed(shard, plans, args.k)
        executor._prunable_terms = exhaustive_terms
        on, on_results = timed(shard, plans, args.k)
        assert on_results == off_results, "pruned results differ from scoring every match"
        for name, t in (("every match scored", off), ("pruned (MaxScore)", on)):
            print(f"round {round_no + 1} {name:20s} {_percentiles(t)}  "
                  f"mean {sum(t) / len(t):6.2f} ms")
    print("identical hits, scores and totals in both modes")
    if args.structured:
        for kind in STRUCTURED:
            kind_plans = [plan_for(shard, analyzer, q, **structured_options(kind)) for q in queries]
            for round_no in range(2):
                t, _ = timed(shard, kind_plans, args.k)
                print(f"round {round_no + 1} {kind:20s} {_percentiles(t)}  "
                      f"mean {sum(t) / len(t):6.2f} ms")
    if args.all_words:
        and_plans = [plan_for(shard, analyzer, q, operator="and") for q in queries]
        taken = sum(executor._conjunctive_terms(p) is not None for p in and_plans)
        print(f"as ANDs: {taken} of {len(and_plans)} over the intersection (two or more terms)")
        intersect = executor._conjunctive_terms
        for round_no in range(3):
            executor._conjunctive_terms = lambda plan: None
            off, off_results = timed(shard, and_plans, args.k)
            executor._conjunctive_terms = intersect
            on, on_results = timed(shard, and_plans, args.k)
            assert on_results == off_results, "the intersection's results differ from the general path's"
            for name, t in (("AND, general path", off), ("AND, intersection", on)):
                print(f"round {round_no + 1} {name:20s} {_percentiles(t)}  mean {sum(t) / len(t):6.2f} ms")
        print("identical hits, scores and totals either way")
    if args.slowest:
        rows = []
        for q, plan in zip(queries, plans):
            if exhaustive_terms(plan, args.k) is None:
                continue
            t0 = time.perf_counter()
            executor.execute(shard, plan, args.k)
            pruned_ms = (time.perf_counter() - t0) * 1000
            executor._prunable_terms = lambda plan, k: None
            t0 = time.perf_counter()
            executor.execute(shard, plan, args.k)
            every_ms = (time.perf_counter() - t0) * 1000
            executor._prunable_terms = exhaustive_terms
            rows.append((pruned_ms, every_ms, q))
        for pruned_ms, every_ms, q in sorted(rows, reverse=True)[:args.slowest]:
            print(f"pruned {pruned_ms:6.2f}  every match {every_ms:6.2f} ms  {q!r}")
    kv.close()


if __name__ == "__main__":
    main()
