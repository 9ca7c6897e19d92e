#!/usr/bin/env python
"""Indexing and search with vectors against the same without, on one fresh local service.

    python benchmarks/vectors.py [--docs 16000] [--rounds 2] [--queries 200]

Indexes the Debian corpus's first --docs documents into fresh indexes, alternating the
three kinds --rounds times (the machine's speed drifts; alternating spreads it evenly):

- `words`: the documents as they are (benchmarks/run.py's typed fields);
- `vectors`: each with a 256-dimension vector sent in the request (clustered, seeded by id),
  a JSON list of numbers;
- `base64`: the same vectors as base64 strings of big-endian float32 (Elasticsearch 9.3's
  bulk format; 1.4 KB a vector against ~5.7 KB of numbers as float32s print);
- `embedded`: the index's builtin embedder fills a 256-d vector from title + body.

and reports docs/s to searchable (run.py's measure_bulk) and each kind's ratio to `words`.
Then, on the last `vectors` index, kNN latency over HTTP (sequential, p50/p99) with 10,000
candidates as the first searches name the field (exact where a shard holds at most 10,000
documents; above that, while its graph is still being built, the graph's candidates and the
rows it does not cover yet), then with 100 through the shards' HNSW graphs once built, and
hybrid (q + knn, RRF) latency, beside plain BM25 on the same index (the three interleaved).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import httpx  # noqa: E402

import run as bench  # noqa: E402  (benchmarks/run.py: corpus, bulk timing)

DIMS = 256


CLUSTERS = 1000
# Vectors are clustered, as embeddings are (a document's is its cluster's centre plus noise
# of the same scale, seeded by its id): uniform Gaussian noise in 256 dimensions has no
# neighbourhoods, and an HNSW graph over it finds a third of the true top 10 at 100 candidates
# (benchmarks/knn_recall.py measures recall on clustered vectors).
CENTRES = np.random.default_rng(2026).normal(size=(CLUSTERS, DIMS)).astype(np.float32)


def with_vectors(docs: list[dict], base64: bool = False) -> list[dict]:
    """Each document with its clustered vector: a list of numbers, or (base64) the base64
    string of its big-endian float32 values, as Elasticsearch 9.3's bulk format has it."""
    from raysearch.schema import base64_vector

    out = []
    for doc in docs:
        seed = zlib.crc32(doc["id"].encode())
        rng = np.random.default_rng(seed)
        vector = (CENTRES[seed % CLUSTERS] + rng.normal(size=DIMS).astype(np.float32)).round(5)
        out.append({**doc, "emb": base64_vector(vector) if base64 else vector.tolist()})
    return out


def latency(client: httpx.Client, index: str, bodies: list[dict]) -> dict:
    for body in bodies[:10]:  # warm
        client.post(f"/indexes/{index}/search", json=body).raise_for_status()
    times = []
    for body in bodies:
        t0 = time.perf_counter()
        client.post(f"/indexes/{index}/search", json=body).raise_for_status()
        times.append(time.perf_counter() - t0)
    return {"p50_ms": round(statistics.median(times) * 1000, 2),
            "p99_ms": round(bench.percentile(times, 99) * 1000, 2)}


def interleaved(client: httpx.Client, index: str, kinds: dict[str, list[dict]]) -> dict:
    """p50/p99 per kind, the kinds' i-th queries sent one after the other for every i."""
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(min(len(bodies) for bodies in kinds.values())):
        for kind, bodies in kinds.items():
            t0 = time.perf_counter()
            client.post(f"/indexes/{index}/search", json=bodies[i]).raise_for_status()
            if i >= 10:  # the first ten warm
                times[kind].append(time.perf_counter() - t0)
    return {kind: {"p50_ms": round(statistics.median(t) * 1000, 2), "p99_ms": round(bench.percentile(t, 99) * 1000, 2)}
            for kind, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=16000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    from raysearch.client import Client
    from raysearch.config import Settings
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    docs = bench.load_docs(args.docs)
    vector_docs = with_vectors(docs)
    data_dir = tempfile.mkdtemp(prefix="rs-vectors-")
    settings = Settings(data_dir=data_dir, port=free_port())
    settings.mongo_uri = None
    service = LocalService(settings, dashboard=False).start()
    kinds = {
        "words": (docs, {"fields": bench.DEBIAN_FIELDS}),
        "vectors": (vector_docs, {"fields": {**bench.DEBIAN_FIELDS, "emb": {"type": "vector", "dims": DIMS}}}),
        "base64": (with_vectors(docs, base64=True),
                   {"fields": {**bench.DEBIAN_FIELDS, "emb": {"type": "vector", "dims": DIMS}}}),
        "embedded": (docs, {"fields": {**bench.DEBIAN_FIELDS, "emb": {"type": "vector", "dims": DIMS}},
                            "embedder": {"source": "builtin", "fields": ["title", "body"], "target": "emb"}}),
    }
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        client = Client(service.url)
        last = {}
        for r in range(args.rounds):
            for kind, (payload, body) in kinds.items():
                index = f"bench-{kind}-{r}"
                client.create_index(index, body)
                sampler = bench.ProcessSampler()
                sampler.start()
                try:
                    result = bench.measure_bulk(client, index, payload, sampler, create=False)
                finally:
                    sampler.stop()
                if result["searchable_docs_per_s"] is None:
                    print(f"{kind}: not all searchable: {result}", flush=True)
                    return 1
                rates[kind].append(result["searchable_docs_per_s"])
                print(f"round {r} {kind:9s} {result['searchable_docs_per_s']:8.1f} docs/s to searchable "
                      f"(completed {result['completed_docs_per_s']} docs/s; acknowledged in {result['ack_s']} s); "
                      f"CPU s by process: {result['memory']['cpu_s_by_role']}", flush=True)
                if last.get(kind):
                    client.delete_index(last[kind])
                last[kind] = index
        print(f"\n{args.docs} Debian documents, {args.rounds} rounds alternating, docs/s to searchable:")
        base = statistics.median(rates["words"])
        for kind, values in rates.items():
            med = statistics.median(values)
            print(f"  {kind:9s} median {med:8.1f}  ({', '.join(f'{v:.0f}' for v in values)})  "
                  f"{med / base:.2f} x words")

        index = last["vectors"]
        rng = np.random.default_rng(5)
        picks = rng.choice(len(vector_docs), size=args.queries, replace=False)
        knn_vectors = [vector_docs[i]["emb"] for i in picks]
        words = [" ".join(vector_docs[i].get("title", "x").split()[:2]) or "x" for i in picks]
        with httpx.Client(base_url=service.url, timeout=120) as http:
            exact = [{"knn": {"field": "emb", "vector": v, "k": 10, "num_candidates": 10_000}} for v in knn_vectors]
            ann = [{"knn": {"field": "emb", "vector": v, "k": 10, "num_candidates": 100}} for v in knn_vectors]
            hybrid = [{"q": w, "knn": {"field": "emb", "vector": v, "k": 10, "num_candidates": 100}}
                      for w, v in zip(words, knn_vectors)]
            plain = [{"q": w} for w in words]
            print(f"\nsearch latency over HTTP on {index} ({args.docs} docs, sequential, top 10):")
            print(f"  bm25                       {latency(http, index, plain)}")
            print(f"  knn, 10,000 candidates, as the graphs start  {latency(http, index, exact)}")
            # A shard builds its graph in the background once the field is searched and it holds
            # ann_min_vectors (10,000) vectors; until then the same request is exact.
            series = []
            for _ in range(12):
                series.append(latency(http, index, ann[:30])["p50_ms"])
                time.sleep(10)
            print(f"  knn, 100 candidates, p50 every 10 s while graphs build: {series}")
            # once built, the three kinds query by query in turn, so that what else the machine
            # does (persistence, graph saves) weighs on each alike
            both = interleaved(http, index, {"bm25": plain, "knn, 100 candidates": ann, "hybrid (q + knn, RRF)": hybrid})
            for kind, figures in both.items():
                print(f"  {kind:26s} {figures}")
            print(f"  hybrid / bm25 p50: {both['hybrid (q + knn, RRF)']['p50_ms'] / both['bm25']['p50_ms']:.2f}")
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
