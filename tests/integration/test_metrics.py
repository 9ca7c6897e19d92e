"""Metrics: read back in Prometheus text format from Ray's metrics export port, and /stats."""

from __future__ import annotations

import time

import httpx
import ray

from tests.conftest import wait_operation


def test_metrics_are_exported_in_prometheus_format(http):
    op = http.post("/bulk-indexing/metrics", json=[{"id": str(i), "title": f"metric doc {i}"} for i in range(300)])
    wait_operation(http, op.json()["operation_id"])
    for _ in range(5):
        http.get("/indexes/metrics/search", params={"q": "metric"})
    port = ray._private.worker.global_worker.node.metrics_export_port
    wanted = ["raysearch_documents_indexed", "raysearch_batches_indexed", "raysearch_search_latency_seconds",
              "raysearch_dirty_keys", "raysearch_batches_in_flight", "raysearch_persistence_lag_seconds"]
    def indexed_lines(text):
        return [line for line in text.splitlines()
                if line.startswith("ray_raysearch_documents_indexed") and 'index="metrics"' in line]

    # Ray exports metrics every few seconds, and earlier tests may already have exported
    # every name: wait for this index's own counter too.
    deadline, text = time.time() + 90, ""
    while time.time() < deadline:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        if all(name in text for name in wanted) and indexed_lines(text):
            break
        time.sleep(2)
    missing = [name for name in wanted if name not in text]
    assert not missing, missing
    indexed = indexed_lines(text)
    assert indexed and float(indexed[0].rsplit(" ", 1)[1]) >= 300


def test_stats_endpoint(http):
    http.post("/bulk-indexing/metrics-stats", json=[{"id": "a", "title": "stats"}])
    stats = http.get("/stats").json()
    entry = stats["indexes"]["metrics-stats"]
    for key in ("documents", "dirty_terms", "batches_in_flight", "persistence_lag_seconds", "persistence_lag_batches"):
        assert key in entry
