"""Prometheus metrics through ray.util.metrics (exported on each node's metrics port).

Created lazily in the process that records them (actors, ingress replicas).
Names get Ray's `ray_` prefix in the Prometheus export.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def _metrics():
    from ray.util.metrics import Counter, Gauge, Histogram

    return {
        "docs_indexed": Counter("raysearch_documents_indexed", "Documents indexed", tag_keys=("index",)),
        "batches_indexed": Counter("raysearch_batches_indexed", "Batches indexed", tag_keys=("index",)),
        "batches_failed": Counter("raysearch_batches_failed", "Batches that failed every attempt",
                                  tag_keys=("index",)),
        "in_flight": Gauge("raysearch_batches_in_flight", "Batches accepted and not yet indexed",
                           tag_keys=("index",)),
        "lag_seconds": Gauge("raysearch_persistence_lag_seconds",
                             "Age of the oldest operation with unpersisted batches", tag_keys=("index",)),
        "lag_batches": Gauge("raysearch_persistence_lag_batches", "Batches indexed but not yet persisted",
                             tag_keys=("index",)),
        "dirty": Gauge("raysearch_dirty_keys", "Keys written to a shard and not yet persisted",
                       tag_keys=("index", "shard")),
        "search_latency": Histogram("raysearch_search_latency_seconds", "Search latency at the ingress",
                                    boundaries=[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
                                    tag_keys=("index",)),
    }


def count(name: str, value: float, **tags) -> None:
    try:
        _metrics()[name].inc(value, tags=tags)
    except Exception:  # metrics must never break indexing or search
        pass


def gauge(name: str, value: float, **tags) -> None:
    try:
        _metrics()[name].set(value, tags=tags)
    except Exception:
        pass


def observe(name: str, value: float, **tags) -> None:
    try:
        _metrics()[name].observe(value, tags=tags)
    except Exception:
        pass
