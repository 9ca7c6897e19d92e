"""Relevance evaluation on a judged collection, through the real HTTP service.

A collection is a directory with `docs.jsonl.gz` or `docs.jsonl` ({"id",
"title", "body", ...} per line), `queries.jsonl` ({"id", "text"}) and `qrels.tsv`
(query_id TAB doc_id TAB grade; grade > 0 = relevant).

Metrics (pure functions, no Ray, no HTTP):

- nDCG@k as trec_eval's `ndcg_cut.k` (and pyterrier's `nDCG@k`) with linear
  gains: DCG = sum_{i=1..k} grade(d_i) / log2(i + 1); the ideal DCG sorts every
  judged grade of the query, whether or not it was retrieved.
- recall@k: relevant documents in the top k / relevant documents judged.
- nDCG@k binary: the same with every grade > 0 counted as 1. The anchors of
  tests/data/corpora/README.md treat cran's grades (ir_datasets' 1 = minimum interest ...
  4 = complete answer) as relevant / not relevant: compare cran with
  `ndcg@10_binary`. On vaswani and cisi (every grade is 1) the two are equal.

Only queries with at least one relevant judgment are evaluated (as trec_eval
does); a judged query that retrieves nothing scores 0.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

DONE = ("completed", "partially_completed", "failed")


# ----------------------------------------------------------------- metrics
def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """query id -> {doc id: grade}. Blank lines and lines that are not 3 (or 4,
    TREC's `qid 0 docid grade`) whitespace-separated fields are skipped."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4:  # TREC format: qid iteration docid grade
                parts = [parts[0], parts[2], parts[3]]
            if len(parts) != 3:
                continue
            qid, doc_id, grade = parts
            try:
                g = int(float(grade))
            except ValueError:
                continue  # a header line
            qrels.setdefault(qid, {})[doc_id] = g
    return qrels


def dcg(gains: Iterable[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranking: Sequence[str], judgments: Mapping[str, float], k: int = 10, binary: bool = False) -> float:
    """nDCG@k with linear gains (grade <= 0 gains nothing; `binary`: every grade > 0
    gains 1); 0 when nothing is relevant."""
    if binary:
        judgments = {d: 1 for d, g in judgments.items() if g > 0}
    ideal = dcg(sorted((g for g in judgments.values() if g > 0), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    seen: set[str] = set()
    gains = []
    for doc_id in ranking:
        if len(gains) >= k:
            break
        if doc_id in seen:  # a duplicate id counts once (trec_eval keeps the first)
            continue
        seen.add(doc_id)
        gains.append(max(judgments.get(doc_id, 0), 0))
    return dcg(gains) / ideal


def recall_at_k(ranking: Sequence[str], judgments: Mapping[str, float], k: int = 100) -> float:
    """Share of the relevant (grade > 0) documents found in the first k; 0 when none is relevant."""
    relevant = {d for d, g in judgments.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranking[:k])) / len(relevant)


def load_queries(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def docs_path(collection_dir: str | Path) -> Path:
    """The collection's documents: `docs.jsonl.gz`, else `docs.jsonl`."""
    root = Path(collection_dir)
    gz = root / "docs.jsonl.gz"
    return gz if gz.exists() else root / "docs.jsonl"


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# -------------------------------------------------------------- end to end
def run_eval(url: str, collection_dir: str, index: str | None = None, fields: str | None = None,
             settings: dict | None = None, size: int = 100, keep_index: bool = True) -> dict:
    """(Re)create an index, bulk-index the collection, run its judged queries
    through the search endpoint, and report nDCG@10 and recall@100.

    `fields` (e.g. "title^2,body") is passed to every search; `settings` is the
    body of `PUT /indexes/{index}` (analyzer, field boosts); both default to the
    service's defaults. Queries go in verbatim: one that errors is listed in
    `errors` and scores 0.
    """
    from raysearch.client import Client, RaySearchClientError, ServiceUnavailable, iter_jsonl

    root = Path(collection_dir)
    name = root.resolve().name
    index = index or f"eval-{name}"
    qrels = load_qrels(root / "qrels.tsv")
    judged = {q: j for q, j in qrels.items() if any(g > 0 for g in j.values())}
    queries = [q for q in load_queries(root / "queries.jsonl") if str(q["id"]) in judged]

    client = Client(url)
    try:
        try:
            client.delete_index(index)
        except RaySearchClientError as exc:
            if exc.status != 404:
                raise
        client.create_index(index, settings or {})
        started = time.perf_counter()
        op = client.bulk_index(index, iter_jsonl(docs_path(root)))
        index_seconds = time.perf_counter() - started
        if op["status"] != "completed":
            raise RuntimeError(f"indexing {name} did not complete: status {op['status']}, "
                               f"errors {op['errors'][:5]}, operations {[f.get('status') for f in op['final']]}")

        per_query: dict[str, dict] = {}
        sums = {"ndcg@10": 0.0, "ndcg@10_binary": 0.0, "recall@100": 0.0}
        errors: list[dict] = []
        latencies: list[float] = []
        for q in queries:
            qid = str(q["id"])
            t0 = time.perf_counter()
            try:
                result = client.search(index, q["text"], size=size, fields=fields)
                ranking = [h["id"] for h in result["hits"]]
            except ServiceUnavailable:
                raise
            except RaySearchClientError as exc:
                errors.append({"query_id": qid, "status": exc.status, "type": exc.type, "reason": exc.reason})
                ranking = []
            latencies.append((time.perf_counter() - t0) * 1000)
            scores = {
                "ndcg@10": ndcg_at_k(ranking, judged[qid], 10),
                "ndcg@10_binary": ndcg_at_k(ranking, judged[qid], 10, binary=True),
                "recall@100": recall_at_k(ranking, judged[qid], 100),
            }
            for metric, value in scores.items():
                sums[metric] += value
            per_query[qid] = {**{m: round(v, 6) for m, v in scores.items()}, "retrieved": len(ranking)}
        n = len(per_query)
        report = {
            "collection": name,
            "index": index,
            "documents": op["documents"],
            "queries": n,
            **{metric: round(total / n, 4) if n else 0.0 for metric, total in sums.items()},
            "index_seconds": round(index_seconds, 2),
            "query_ms_p50": round(statistics.median(latencies), 2) if latencies else 0.0,
            "query_ms_p99": round(percentile(latencies, 0.99), 2),
            "errors": errors,
            "per_query": per_query,
        }
        if not keep_index:
            client.delete_index(index)
        return report
    finally:
        client.close()
