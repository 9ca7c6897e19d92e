#!/usr/bin/env python
"""What each component of the ingest path can do alone, per core: the figures a cluster's
ceiling is computed from (docs/design.md, "The ceiling of a cluster").

    python benchmarks/capacity.py [--docs 16000]

In process, one thread, no Ray (each component's own code, as its actor runs it; what Ray
adds per call is measured by benchmarks/actor_call_vs_wire.py):
- ingress: a bulk body (JSON array of the Debian corpus, 5,000 documents a request) parsed,
  every document validated, cut into batches of 500 and encoded as intake payloads (MB/s
  and documents/s);
- IndexWorker: each payload decoded, analysed and split into 2 shards' ShardBatches
  (split_batch), documents/s per core;
- ShardStore: those ShardBatches applied to ShardIndexes on RocksDB (documents/s);
- TrackerActor: OperationTracker over an in-memory store and an instant dispatcher,
  operations of 10 batches each driven from pending to persisted (batch transitions/s:
  indexed, then persisted, each counted);
- PersistenceActor: the shards' change logs cut into chunk payloads and written to a local
  MongoDB-compatible server, as the drain does (MB/s and chunks/s).
CPU seconds are the process's own (time.process_time), so a busy machine shows in wall
time, not in these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (benchmarks/run.py: the corpus)

from raysearch.analysis.analyzer import Analyzer  # noqa: E402
from raysearch.config import Settings  # noqa: E402
from raysearch.index.batch import decode_payload, encode_payload, split_batch  # noqa: E402
from raysearch.index.shard_index import ShardIndex  # noqa: E402
from raysearch.ingest import validation  # noqa: E402
from raysearch.ops.tracker import OperationTracker  # noqa: E402
from raysearch.storage.local_mongo import LocalMongo  # noqa: E402
from raysearch.storage.mongo import MongoStore  # noqa: E402
from raysearch.storage.rocks import RocksKV  # noqa: E402

SHARDS, BATCH, REQUEST = 2, 500, 5000


def _cpu(fn):
    started = time.process_time()
    out = fn()
    return out, time.process_time() - started


def ingress(docs: list[dict]) -> tuple[list[bytes], dict]:
    bodies = [orjson.dumps(docs[i : i + REQUEST]) for i in range(0, len(docs), REQUEST)]

    def work():
        payloads = []
        for body in bodies:
            raw, _ = validation.parse_bulk_body(body, "application/json")
            ok = [doc for doc, _, reason in (validation.validate_document(r, 1 << 20) for r in raw) if not reason]
            payloads += [encode_payload(ok[i : i + BATCH]) for i in range(0, len(ok), BATCH)]
        return payloads

    payloads, cpu = _cpu(work)
    mb = sum(map(len, bodies)) / 1e6
    return payloads, {"MB/s": mb / cpu, "docs/s": len(docs) / cpu}


def index_worker(payloads: list[bytes]) -> tuple[list[dict], dict]:
    analyzer = Analyzer()

    def work():
        out = []
        for payload in payloads:
            docs, deletes, types, vectors = decode_payload(payload)
            out.append(split_batch(docs, deletes, SHARDS, analyzer, types, vectors)[0])
        return out

    parts, cpu = _cpu(work)
    docs = sum(len(p.doc_ids) for part in parts for p in part.values())
    return parts, {"docs/s per core": docs / cpu}


def shard_store(parts: list[dict], folder: str) -> tuple[list[ShardIndex], dict]:
    shards = [ShardIndex(RocksKV(os.path.join(folder, f"shard{n}"), sync=False)) for n in range(SHARDS)]

    def work():
        for b, part in enumerate(parts):
            for n, batch in part.items():
                shards[n].apply(f"b{b}", batch)

    _, cpu = _cpu(work)
    docs = sum(len(p.doc_ids) for part in parts for p in part.values())
    return shards, {"docs/s per core": docs / cpu}


class _Store:
    """In memory (the tracker's MongoDB store costs what the persistence figure shows)."""

    def __init__(self):
        self.ops, self.intake = {}, {}

    def load_active_operations(self):
        return []

    def load_operation(self, op_id):
        return self.ops.get(op_id)

    def save_operation(self, doc):
        self.ops[doc["operation_id"]] = doc

    def delete_batches(self, op_id, batch_nos):
        pass

    def get_batch(self, op_id, batch_no):
        return b""

    def list_operations(self, index, limit, cursor):
        return []

    def sweep_operations(self, finished_before):
        return 0


def tracker(operations: int = 400, batches: int = 10) -> dict:
    stamp = [0]

    async def dispatch(index, op_id, batch):
        stamp[0] += 1
        return {"opstamps": {0: stamp[0]}, "indexed": BATCH, "failed": []}

    async def notify(*_):
        return None

    async def scenario():
        core = OperationTracker(Settings(operation_sweep_interval_s=3600), _Store(), dispatch, notify)
        for i in range(operations):
            await core.create(f"op{i}", "idx", [BATCH] * batches, [], may_exist=False)
        while core.pending_batches():
            await asyncio.sleep(0)
        await core.shards_persisted({"idx": {0: stamp[0]}})
        while core.memory_stats()["operations"]:
            await asyncio.sleep(0)

    _, cpu = _cpu(lambda: asyncio.run(scenario()))
    return {"batch transitions/s": 2 * operations * batches / cpu}


def persistence(shards: list[ShardIndex], folder: str) -> dict:
    mongo_server = LocalMongo(os.path.join(folder, "mongo")).start()
    store = MongoStore(mongo_server.uri, "capacity")
    try:
        cut = []
        for n, shard in enumerate(shards):
            chunks, log_keys = shard.collect_chunks(1_000_000, 5000)
            cut.append((n, chunks))
        started, cpu0 = time.perf_counter(), time.process_time()
        for n, chunks in cut:
            for i in range(0, len(chunks), 16):  # a drain writes a shard's chunks in bulk writes
                store.write_chunks("capacity", n, i, chunks[i : i + 16])
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
        mb = sum(len(c[2]) for _, chunks in cut for c in chunks) / 1e6
        count = sum(len(chunks) for _, chunks in cut)
        return {"MB/s": mb / wall, "chunks/s": count / wall, "MB": mb, "driver CPU s": cpu,
                "note": "wall time: the MongoDB server's work is in another process"}
    finally:
        store.close()
        mongo_server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=16000)
    args = p.parse_args(argv)
    docs = run.load_docs(args.docs)
    folder = tempfile.mkdtemp(prefix="capacity-")
    try:
        payloads, f_ingress = ingress(docs)
        print(f"ingress (parse, validate, batch, encode): {f_ingress['MB/s']:.1f} MB/s, "
              f"{f_ingress['docs/s']:,.0f} docs/s per core", flush=True)
        parts, f_worker = index_worker(payloads)
        print(f"IndexWorker (decode, analyse, split into {SHARDS} shards): "
              f"{f_worker['docs/s per core']:,.0f} docs/s per core", flush=True)
        shards, f_shard = shard_store(parts, folder)
        print(f"ShardStore apply (RocksDB): {f_shard['docs/s per core']:,.0f} docs/s per core", flush=True)
        f_tracker = tracker()
        print(f"TrackerActor core: {f_tracker['batch transitions/s']:,.0f} batch transitions/s "
              f"({f_tracker['batch transitions/s'] / 2 * BATCH:,.0f} docs/s at {BATCH} a batch)", flush=True)
        f_persist = persistence(shards, folder)
        print(f"PersistenceActor writes to MongoDB: {f_persist['MB/s']:.1f} MB/s, {f_persist['chunks/s']:,.0f} "
              f"chunks/s ({f_persist['MB']:.1f} MB for {len(docs):,} docs: "
              f"{len(docs) * f_persist['MB/s'] / f_persist['MB']:,.0f} docs/s)", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
