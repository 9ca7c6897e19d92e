#!/usr/bin/env python
"""kNN and hybrid search as an index of vectors grows, over HTTP, beside plain BM25.

    python benchmarks/vectors_scale.py --copies 16      (about 1M documents, a 256-d vector each)

Indexes the Debian corpus copy after copy under new ids (scale.py's copy_of), each document
with a 256-dimension vector (vectors.py's clustered vectors, seeded by the document's id) and
`pct`, its id's crc32 mod 100 (a filter on one value passes 1 % of the documents). One kNN
search after the first copy names the field, as a user searching a growing index would:
from then on the shards grow their HNSW graphs in the background.

At 1 copy and at the last (and at 4 when there are more): the index settled (every change
persisted, the shards quiet) and every shard's graph caught up (GET /stats, a shard's
"vectors"), then over HTTP, sequentially, query by query in turn so that the machine's drift
weighs on each alike:
- `bm25`: two title words of a drawn document;
- `knn`: k 10, 100 candidates, a fresh vector near one of the clusters;
- `hybrid`: both, fused by RRF (the API's default);
- `knn, 1 % filter`: the same vectors with {"term": {"pct": 7}};
and recall@10 of the kNN answers against exact search, computed here over the very vectors
sent (float32, cosine), with and without the filter.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import run as bench  # noqa: E402  (benchmarks/run.py: corpus, bulk timing, settle)
from scale import copy_of  # noqa: E402
from vectors import CENTRES, CLUSTERS, DIMS, with_vectors  # noqa: E402

INDEX = "vectors-scale"
FIELDS = {**bench.DEBIAN_FIELDS, "pct": {"type": "integer"}, "emb": {"type": "vector", "dims": DIMS}}
FILTER_VALUE = 7


def pct_of(doc_id: str) -> int:
    return zlib.crc32(doc_id.encode()) % 100


def slice_docs(corpus: list[dict], k: int) -> tuple[list[dict], np.ndarray]:
    """Copy k with its vectors and pct; and the vectors as sent (float32, one row a document)."""
    docs = with_vectors(copy_of(corpus, k))
    for doc in docs:
        doc["pct"] = pct_of(doc["id"])
    return docs, np.asarray([doc["emb"] for doc in docs], dtype=np.float32)


def query_vectors(count: int, seed: int = 17) -> np.ndarray:
    """Fresh vectors near the clusters (not any document's own: its own would be its top hit)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, CLUSTERS, size=count)
    return (CENTRES[picks] + rng.normal(size=(count, DIMS))).astype(np.float32).round(5)


def exact_top(unit: np.ndarray, ids: list[str], query: np.ndarray, k: int, rows: np.ndarray | None = None) -> set[str]:
    """The exact top k by cosine over the unit rows (or the given subset of rows)."""
    q = query / np.linalg.norm(query)
    if rows is None:
        sims = unit @ q
        top = np.argpartition(-sims, k)[:k]
        return {ids[i] for i in top}
    sims = unit[rows] @ q
    top = np.argpartition(-sims, k)[:k] if len(rows) > k else np.arange(len(rows))
    return {ids[rows[i]] for i in top}


def graphs_caught_up(http, min_vectors: int, timeout_s: float = 1800) -> float:
    """Wait until every shard's graph of `emb` covers all its documents; returns seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        shards = http.get("/stats").json()["indexes"][INDEX]["shards"]
        columns = [s.get("vectors", {}).get("emb", {}) for s in shards]
        # below ann_min_vectors a shard keeps no graph: it searches exactly
        if all(c.get("vectors", 0) < min_vectors if c.get("graph") is None
               else c["graph"]["covered"] >= c["graph"]["documents"] for c in columns):
            return round(time.perf_counter() - started, 1)
        time.sleep(2)
    raise RuntimeError(f"graphs not caught up in {timeout_s} s")


def timed(http, body: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = http.post(f"/indexes/{INDEX}/search", json=body)
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed, r.json()


def measure(http, words: list[str], vectors: np.ndarray, unit: np.ndarray, ids: list[str],
            filtered_rows: np.ndarray) -> dict:
    kinds = {"bm25": [], "knn": [], "hybrid": [], "knn, 1 % filter": []}
    answers: dict[str, list[set[str]]] = {"knn": [], "knn, 1 % filter": []}
    for i, (w, v) in enumerate(zip(words, vectors)):
        knn = {"field": "emb", "vector": v.tolist(), "k": 10, "num_candidates": 100}
        bodies = {"bm25": {"q": w}, "knn": {"knn": knn}, "hybrid": {"q": w, "knn": knn},
                  "knn, 1 % filter": {"knn": knn, "filter": {"term": {"pct": FILTER_VALUE}}}}
        for kind, body in bodies.items():
            elapsed, answer = timed(http, body)
            if i >= 10:  # the first ten warm
                kinds[kind].append(elapsed)
            if kind in answers:
                answers[kind].append({h["id"] for h in answer["hits"]})
    # the exact answers once every search is timed: numpy's threads, busy over a million rows
    # (and spinning a while after), would otherwise take the CPU from the searches timed next
    recall = {kind: [len(got & (want := exact_top(unit, ids, v, 10, filtered_rows if kind != "knn" else None)))
                     / len(want) for got, v in zip(got_sets, vectors)]
              for kind, got_sets in answers.items()}
    out = {kind: {"p50_ms": round(statistics.median(t) * 1000, 2), "p99_ms": round(bench.percentile(t, 99) * 1000, 2)}
           for kind, t in kinds.items()}
    out["hybrid / bm25 p50"] = round(out["hybrid"]["p50_ms"] / out["bm25"]["p50_ms"], 2)
    out["recall@10"] = {kind: round(float(np.mean(r)), 4) for kind, r in recall.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, default=16, help="copies of the corpus (16: about 1M documents)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N corpus records (trial runs)")
    p.add_argument("--queries", type=int, default=200, help="queries per kind at each checkpoint")
    p.add_argument("--out", default=str(bench.DEFAULT_OUT))
    args = p.parse_args(argv)

    import httpx

    from raysearch.client import Client
    from raysearch.config import Settings
    from raysearch.ports import free_port
    from raysearch.runner import LocalService

    corpus = bench.load_docs(args.limit)
    rng = np.random.default_rng(5)
    picks = rng.choice(len(corpus), size=args.queries + 10, replace=False)
    words = [" ".join(corpus[i].get("title", "x").split()[:2]) or "x" for i in picks]
    vectors = query_vectors(len(words))
    data_dir = tempfile.mkdtemp(prefix="rs-vectors-scale-")
    settings = Settings.from_env(data_dir=data_dir, port=free_port())
    settings.mongo_uri = None
    service = LocalService(settings, dashboard=False)
    checkpoints = {1, args.copies} | ({4} if args.copies > 4 else set())
    report: dict = {"command": " ".join(["python", "benchmarks/vectors_scale.py", *(argv or sys.argv[1:])]),
                    "environment": bench.environment(), "slices": [], "checkpoints": [],
                    "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    matrices: list[np.ndarray] = []
    ids: list[str] = []
    try:
        service.start()
        client = Client(service.url, timeout=600)
        http = httpx.Client(base_url=service.url, timeout=120)
        client.create_index(INDEX, {"fields": FIELDS})
        sampler = bench.ProcessSampler()
        sampler.start()
        distinct = len({d["id"] for d in corpus})
        for k in range(args.copies):
            docs, matrix = slice_docs(corpus, k)
            m = bench.measure_bulk(client, INDEX, docs, sampler, create=False, expect_documents=distinct * (k + 1))
            row = {"slice": k + 1, "searchable_docs_per_s": m["searchable_docs_per_s"],
                   "completed_docs_per_s": m["completed_docs_per_s"], "pss_mb": m["memory"]["pss_mb_at_end"],
                   "cpu_s_by_role": m["memory"].get("cpu_s_by_role")}
            print(f"slice {k + 1}/{args.copies}: {row}", flush=True)
            report["slices"].append(row)
            matrices.append(matrix)
            ids.extend(doc["id"] for doc in docs)
            del docs
            if k == 0:  # names the field: the shards grow its graphs from now on
                timed(http, {"knn": {"field": "emb", "vector": vectors[0].tolist(), "k": 10}})
            if k + 1 in checkpoints:
                bench.settle(INDEX)
                waited = graphs_caught_up(http, service.settings.ann_min_vectors)
                unit = np.concatenate(matrices)
                unit /= np.linalg.norm(unit, axis=1, keepdims=True)
                pct = np.fromiter((pct_of(i) for i in ids), dtype=np.int16, count=len(ids))
                filtered_rows = np.flatnonzero(pct == FILTER_VALUE)
                figures = measure(http, words, vectors, unit, ids, filtered_rows)
                del unit
                stats = http.get("/stats").json()["indexes"][INDEX]
                entry = {"documents": stats["documents"], "graphs_caught_up_after_s": waited, **figures}
                report["checkpoints"].append(entry)
                print(f"  at {stats['documents']:,} documents: {json.dumps(entry)}", flush=True)
            save(report, args.out)
        sampler.stop()
    finally:
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    save(report, args.out)
    return 0


def save(report: dict, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vectors_scale.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.exit(main())
