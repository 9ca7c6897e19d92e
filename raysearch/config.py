"""Settings in one place; every field can be overridden by an env var RAYSEARCH_<NAME>."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

ENV_PREFIX = "RAYSEARCH_"
NAMESPACE = "raysearch"  # Ray namespace of every named actor


# Postings a shard keeps decoded for searches, when the setting below is left unset: a share
# of the postings the shard holds (its indexed tokens, an upper estimate), at least a floor,
# at most what a share of the machine's memory holds (index/shard_index.py, posting_cache_bound).
POSTING_CACHE_SHARE = 0.25
POSTING_CACHE_MIN_POSTINGS = 4_000_000
POSTING_CACHE_MEMORY_SHARE = 1 / 16  # of the machine's memory, per shard, at 24 bytes a posting


class Settings(BaseModel):
    """Service configuration, passed explicitly to every actor (no globals)."""

    data_dir: str = Field(default=str(Path.home() / ".raysearch"), description="RocksDB shards and local MongoDB data")
    mongo_uri: str | None = Field(default=None, description="MongoDB URI; unset = start a local SecantusDB")
    mongo_db: str = "raysearch"
    host: str = "127.0.0.1"
    port: int = 8000
    # "haproxy": Serve's HAProxy ingress straight to the replica (serve/haproxy.py; about
    # 4 ms less per request than Serve's proxy actor here), "proxy": Serve's default proxy.
    # Applies where `raysearch serve` starts its own Ray; a cluster keeps its own setting.
    ingress: Literal["haproxy", "proxy"] = Field(default="haproxy", description="HTTP ingress of a local service")
    workers: int = Field(default=12, description="IndexWorker pool size")
    # Shards are the unit of write parallelism, and every search fans out to all of them
    # twice (statistics, then scoring; benchmarks/search_round_trips.py times the rounds).
    # On a 2-core machine 2 measured best (benchmarks/README.md); a cluster sets more per index.
    shards: int = Field(default=2, ge=1, description="default shards per new index")
    batch_size: int = Field(
        default=500, ge=1, le=5000,
        description="documents per indexing batch (<= 5,000: one posting block then fits a MongoDB chunk); "
        "an index of many shards takes at least 100 a shard (ingest/intake.batch_docs)",
    )
    index_concurrency: int | None = Field(
        default=None, ge=1,
        description="batches analysed at once across the IndexWorker pool; unset: twice the cluster's CPUs "
        "(the last worker freed takes the next batch, so the busy ones stay warm: ops/worker_pool.py)")
    index_attempts: int = 3
    persist_attempts: int = 5
    backoff_base_s: float = 0.5
    persist_interval_s: float = 0.2
    full_drain_interval_s: float = Field(
        default=30.0, gt=0, description="the persistence actor drains the indexes the tracker names as having "
        "unpersisted batches every cycle, and every shard of every index this often (a safety net)")
    chunk_postings: int = Field(default=5000, description="max entries per MongoDB chunk document")
    posting_cache_postings: int | None = Field(
        default=None, ge=0,
        description="postings each shard keeps decoded for searches (LRU, 24 bytes each, filled only as "
        "queries read lists). Unset (the default): sized from the shard, a quarter of the tokens it has "
        "indexed, at least 4M and at most what 1/16 of the machine's memory holds, and resized as it grows "
        "(at 511k documents a shard, a fixed 4M made every corpus query decode its lists again: p50 10 ms "
        "instead of 2)")
    drain_limit: int = Field(default=50_000, description="max changes drained from one shard per cycle")
    compact_min_entries: int = Field(
        default=100_000, ge=1, description="a shard's MongoDB log is compacted once it holds this many new entries...")
    compact_ratio: float = Field(
        default=1.0, gt=0, description="...and at least this many times its live entries (bounded write amplification)")
    compact_garbage_ratio: float = Field(
        default=0.05, gt=0, description="a shard's log is also compacted once the values it superseded (updates, "
        "deletes) weigh this fraction of its live bytes: MongoDB then stays near its live size")
    compact_min_garbage_bytes: int = Field(default=1 << 20, ge=1, description="...and at least this many bytes")
    compact_busy_garbage_ratio: float = Field(
        default=0.5, gt=0, description="while a shard's log keeps growing (writes within compact_idle_s), its "
        "history must weigh this fraction of the live bytes before a compaction (each one rewrites the whole live "
        "state: at compact_garbage_ratio, a stream of updates rewrote it for every twentieth updated)")
    compact_idle_s: float = Field(
        default=10.0, ge=0, description="a shard's log with no new chunk for this long is compacted at "
        "compact_garbage_ratio, so MongoDB settles near its live size once writes stop")
    compact_interval_s: float = Field(default=5.0, description="how often the compactor looks at the shards")
    snapshot_idle_s: float = Field(
        default=2.0, gt=0, description="a shard snapshots its statistics after this long without writes")
    ann_min_vectors: int = Field(
        default=10_000, ge=1, description="a shard searches a vector field exactly (numpy) until it holds this "
        "many vectors, and then builds an HNSW graph of them in the background (index/ann.py); a search whose "
        "filter leaves fewer candidates than this is exact as well")
    max_prefix_expansions: int = 128
    max_fuzzy_expansions: int = Field(
        default=50, ge=1, le=1024, description="terms a fuzzy term (word~, typo tolerance) expands to at most: "
        "the closest, by edits then term (Elasticsearch's max_expansions)")
    stats_dictionary_max_terms: int = Field(
        default=1_000_000, ge=0, description="an ingress keeps the whole term dictionary of an index whose "
        "statistics hold still, up to this many (field, term) pairs (about 100 bytes each), so that searches "
        "take one round of shard calls instead of two (search/stats_cache.py); 0: never")
    max_body_bytes: int = 100 * 1024 * 1024
    max_doc_bytes: int = 1024 * 1024
    max_query_chars: int = 8192
    max_query_clauses: int = 1024
    max_size: int = 10_000
    max_window: int = 100_000
    api_key: str | None = Field(default=None, description="if set, every endpoint but /healthz needs Bearer auth")
    max_pending_batches: int = Field(default=4000, description="accepted but unindexed batches before 429")
    max_unpersisted_batches: int = Field(
        default=4000, description="indexed batches not yet persisted to MongoDB before 429 (persistence lag)")
    operation_retention_s: float = Field(
        default=7 * 24 * 3600, ge=0,
        description="finished bulk operations are deleted from MongoDB this long after they ended "
        "(a TTL index on finished_at, and a sweep by the tracker at most every operation_sweep_interval_s)",
    )
    operation_sweep_interval_s: float = Field(default=60.0, gt=0, description="how often the tracker sweeps")
    webhook_attempts: int = 5
    webhook_allowed_hosts: str = Field(
        default="",
        description="comma-separated host names or fnmatch patterns (e.g. 'hooks.example.com,*.corp.example') "
        "a bulk's webhook may point to; '*' allows any host; empty (the default) refuses every webhook, "
        "since a webhook is a request the server makes to a URL its client chose",
    )
    node_local_dirs: bool = Field(
        default=False,
        description="keep each node's shards under data_dir/node-<id>/: for a data_dir on storage that several "
        "nodes share (NFS), so that a shard restarted on another node never opens a RocksDB that a "
        "partitioned node's shard may still hold open, and rebuilds from MongoDB instead",
    )

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values = {}
        for name, field in cls.model_fields.items():
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
