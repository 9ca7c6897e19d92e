#!/usr/bin/env python
"""One shard's cost of random updates, in process (no Ray, no HTTP): what an apply spends
on removals, on purges of dead postings, and in all.

    python benchmarks/shard_updates.py [--docs 16000] [--updates 8000] [--rounds 2]

Builds a ShardIndex on a real RocksDB in a temporary directory from the first --docs
documents of the Debian corpus (batches of 250, analysed by split_batch as the
IndexWorkers do), then re-indexes --updates ids drawn at random (seed 1) per round, each
title changed. Prints documents/s of the inserts and of the updates (analysis included),
and the seconds the purges took (index/dead_postings.py) with how many batches they
purged.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (benchmarks/run.py: the corpus)

from raysearch.analysis.analyzer import Analyzer  # noqa: E402
from raysearch.index import dead_postings  # noqa: E402
from raysearch.index.batch import split_batch  # noqa: E402
from raysearch.index.shard_index import ShardIndex  # noqa: E402
from raysearch.storage.rocks import RocksKV  # noqa: E402

BATCH = 250


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=16000)
    p.add_argument("--updates", type=int, default=8000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    docs = run.load_docs(args.docs)
    by_id = {d["id"]: d for d in docs}
    path = tempfile.mkdtemp(prefix="shard-updates-")
    purges = {"seconds": 0.0, "batches": 0}
    purge_into = dead_postings.DeadPostings.purge_into

    def timed(self, *a, **k):
        started = time.perf_counter()
        out = purge_into(self, *a, **k)
        purges["seconds"] += time.perf_counter() - started
        purges["batches"] += len(out[0])
        return out

    dead_postings.DeadPostings.purge_into = timed
    try:
        shard, analyzer = ShardIndex(RocksKV(path, sync=False)), Analyzer()
        started = time.perf_counter()
        for b in range(0, len(docs), BATCH):
            shard.apply(f"insert-{b}", split_batch(docs[b : b + BATCH], [], 1, analyzer)[0][0])
        insert_s = time.perf_counter() - started
        print(f"insert: {len(docs):,} docs, {len(docs) / insert_s:,.0f} docs/s", flush=True)
        rng = random.Random(1)
        for r in range(args.rounds):
            ids = rng.sample(sorted(by_id), min(args.updates, len(by_id)))
            changed = [{**by_id[i], "title": f"{by_id[i].get('title', '')} (update {r + 1})"} for i in ids]
            purges.update(seconds=0.0, batches=0)
            started = time.perf_counter()
            for b in range(0, len(changed), BATCH):
                shard.apply(f"update-{r}-{b}", split_batch(changed[b : b + BATCH], [], 1, analyzer)[0][0])
            seconds = time.perf_counter() - started
            dead, held = shard.dead_share()
            print(f"update round {r + 1}: {len(changed):,} random ids, {len(changed) / seconds:,.0f} docs/s "
                  f"({len(changed) / seconds / (len(docs) / insert_s):.2f}x inserts); purges "
                  f"{purges['seconds']:.2f} s of {seconds:.2f} ({purges['batches']} batches); "
                  f"dead share now {dead / max(held, 1):.1%}", flush=True)
    finally:
        dead_postings.DeadPostings.purge_into = purge_into
        shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
