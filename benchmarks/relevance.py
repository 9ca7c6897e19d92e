"""Relevance of BM25, kNN, hybrid and RM3 side by side on the judged collections.

    python benchmarks/relevance.py [--collections vaswani cisi cran] [--shards 2]

Each collection is indexed in process (the very ShardIndex, IndexWorker batch code,
builtin embedder and SearchCoordinator the service runs, over in-memory stores: relevance
does not depend on the transport, and this takes a minute instead of a service's start),
with the builtin embedder filling a 256-d `embedding` from title + body. Every judged
query runs verbatim, top 100, under each configuration; nDCG@10 (cran: binary, as its
anchors are) and recall@100 are printed beside the anchors of tests/data/corpora/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from raysearch import evaluation  # noqa: E402
from raysearch.analysis import embedding  # noqa: E402
from raysearch.client import iter_jsonl  # noqa: E402
from raysearch.index.batch import split_batch  # noqa: E402
from raysearch.index.shard_index import ShardIndex  # noqa: E402
from raysearch.indexmeta import build  # noqa: E402
from raysearch.models import IndexSettings, SearchRequest  # noqa: E402
from raysearch.search.coordinator import IndexTarget, SearchCoordinator, SearchLimits  # noqa: E402
from raysearch.search.shard_side import LocalShard  # noqa: E402
from raysearch.storage.kv import MemoryKV  # noqa: E402

CORPORA = ROOT / "tests" / "data" / "corpora"
# best of tantivy, SQLite FTS5 and bm25s per collection (tests/data/corpora/README.md)
ANCHORS = {"vaswani": 0.439, "cisi": 0.381, "cran": 0.385}
RM3 = {"rm3": {"docs": 10, "terms": 10, "weight": 0.5}}
CONFIGS = {
    "bm25": lambda q, v: {"q": q},
    "bm25+rm3": lambda q, v: {"q": q, "expand": RM3},
    "knn": lambda q, v: {"knn": {"field": "embedding", "vector": v, "k": 100, "num_candidates": 100}},
    "hybrid rrf": lambda q, v: {"q": q, "hybrid": True},
    "hybrid linear .2": lambda q, v: {"q": q, "hybrid": True, "rank": {"linear": {"weight": 0.2}}},
    "hybrid rrf+rm3": lambda q, v: {"q": q, "hybrid": True, "expand": RM3},
    # the best of a small sweep on Vaswani itself (so optimistic there): linear weights .1-.3 and
    # RM3 (docs 3-10, terms 10-30, weight .5-.8) alone and with linear fusion
    "linear .15+rm3(5,30,.6)": lambda q, v: {"q": q, "hybrid": True, "rank": {"linear": {"weight": 0.15}},
                                              "expand": {"rm3": {"docs": 5, "terms": 30, "weight": 0.6}}},
}


def build_index(name: str, docs: list[dict], shards: int) -> IndexTarget:
    settings = IndexSettings(fields={"embedding": {"type": "vector", "dims": 256}},
                             embedder={"fields": ["title", "body"], "target": "embedding"}).stored()
    analyzer = build(IndexSettings(**settings))
    target = IndexTarget(name, settings, analyzer, [])
    stores = [ShardIndex(MemoryKV()) for _ in range(shards)]
    for start in range(0, len(docs), 500):
        batch = [dict(d) for d in docs[start:start + 500]]
        embedding.fill_vectors(batch, ["title", "body"], "embedding")
        per_shard, _, failed = split_batch(batch, [], shards, analyzer, target.types, target.vectors)
        assert not failed, failed[:3]
        for n, part in per_shard.items():
            stores[n].apply(f"b{start}", part)
    return IndexTarget(name, settings, analyzer, [LocalShard(s, n) for n, s in enumerate(stores)])


async def evaluate(target: IndexTarget, queries: list[dict], judged: dict, binary: bool) -> dict[str, tuple]:
    coordinator = SearchCoordinator(SearchLimits())
    vectors = embedding.embed([q["text"] for q in queries])
    out = {}
    for config, make in CONFIGS.items():
        ndcg = recall = 0.0
        started = time.perf_counter()
        for q, v in zip(queries, vectors):
            body = make(q["text"], v.tolist())
            result = await coordinator.search(target, SearchRequest(**body, size=100))
            ranking = [h["id"] for h in result["hits"]]
            ndcg += evaluation.ndcg_at_k(ranking, judged[str(q["id"])], 10, binary=binary)
            recall += evaluation.recall_at_k(ranking, judged[str(q["id"])], 100)
        n = len(queries)
        out[config] = (ndcg / n, recall / n, (time.perf_counter() - started) / n * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", nargs="+", default=list(ANCHORS))
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    table = {}
    for name in args.collections:
        root = CORPORA / name
        qrels = evaluation.load_qrels(root / "qrels.tsv")
        judged = {q: j for q, j in qrels.items() if any(g > 0 for g in j.values())}
        queries = [q for q in evaluation.load_queries(root / "queries.jsonl") if str(q["id"]) in judged]
        docs = list(iter_jsonl(evaluation.docs_path(root)))
        started = time.perf_counter()
        target = build_index(name, docs, args.shards)
        print(f"{name}: {len(docs)} docs indexed with embeddings in {time.perf_counter() - started:.1f} s; "
              f"{len(queries)} judged queries", flush=True)
        table[name] = asyncio.run(evaluate(target, queries, judged, binary=(name == "cran")))
    configs = list(CONFIGS)
    print("\nnDCG@10 (cran: binary gains, as its anchors) -- recall@100 in brackets\n")
    print("| collection | best anchor | " + " | ".join(configs) + " |")
    print("|---|---|" + "---|" * len(configs))
    for name, rows in table.items():
        cells = [f"{rows[c][0]:.4f} ({rows[c][1]:.3f})" for c in configs]
        print(f"| {name} | {ANCHORS.get(name, float('nan')):.3f} | " + " | ".join(cells) + " |")
    print("\nms per query (in process, 100 hits):")
    for name, rows in table.items():
        print(f"  {name}: " + ", ".join(f"{c} {rows[c][2]:.1f}" for c in configs))


if __name__ == "__main__":
    main()
