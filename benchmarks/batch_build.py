"""The per-document work of an IndexWorker and of a ShardStore, in process (no Ray):
`split_batch` (analysis, posting blocks, stored JSON, T entries) over batches of the
Debian corpus with one long-lived Analyzer, as in a worker, best of `--rounds`; then
`ShardIndex.apply` of one shard's parts into a fresh RocksDB (new documents), then of the
same ids again with a changed title (updates), with the change log drained every 4
batches as persistence would. Prints ms per document.

    python benchmarks/batch_build.py                 # 20,000 docs, batches of 500, 2 shards
    python benchmarks/batch_build.py --docs 5000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import run as bench  # noqa: E402  (benchmarks/run.py: the corpus)

from raysearch.analysis.analyzer import Analyzer  # noqa: E402
from raysearch.index.batch import split_batch  # noqa: E402
from raysearch.index.shard_index import ShardIndex  # noqa: E402
from raysearch.storage.rocks import RocksKV  # noqa: E402

TYPES = {"section": "keyword", "priority": "keyword", "installed_size": "integer"}  # as run.py declares


def _apply_all(shard: ShardIndex, parts: list, tag: str) -> float:
    """Seconds to apply `parts`, draining the change log every 4 batches as persistence would."""
    t = time.perf_counter()
    for j, part in enumerate(parts):
        shard.apply(f"{tag}{j}", part)
        if j % 4 == 3 or j == len(parts) - 1:
            while True:
                _, log = shard.collect_chunks(50_000, 5000)
                if not log:
                    break
                shard.ack_changes(log)
    return time.perf_counter() - t


def apply_ms_per_doc(parts: list, updates: list, rounds: int) -> tuple[float, float]:
    """Best of `rounds`, ms per document: ShardIndex.apply of `parts` into a fresh RocksDB,
    then of `updates` (the same ids again, changed: each replaces a stored document)."""
    best_insert = best_update = float("inf")
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="raysearch-apply-") as path:
            kv = RocksKV(path)
            shard = ShardIndex(kv)
            best_insert = min(best_insert, _apply_all(shard, parts, "b"))
            best_update = min(best_update, _apply_all(shard, updates, "u"))
            kv.close()
    n = sum(len(p.doc_ids) for p in parts)
    return best_insert * 1e3 / n, best_update * 1e3 / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--corpus", default=None, metavar="PATH")
    p.add_argument("--profile", action="store_true", help="print the top functions of one round")
    args = p.parse_args(argv)
    docs = bench.load_docs(args.docs, bench.corpus_path(args.corpus))
    analyzer = Analyzer()
    batches = [docs[i:i + args.batch] for i in range(0, len(docs), args.batch)]
    for batch in batches:  # warm the analyzer's caches, as a worker's are after its first batches
        split_batch(batch, [], args.shards, analyzer)
    best = float("inf")
    for _ in range(args.rounds):
        t = time.perf_counter()
        for batch in batches:
            split_batch(batch, [], args.shards, analyzer)
        best = min(best, time.perf_counter() - t)
    print(f"split_batch: {best / len(docs) * 1e3:.3f} ms/doc ({len(docs)} docs, batches of {args.batch}, "
          f"{args.shards} shards, best of {args.rounds})")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for batch in batches:
            split_batch(batch, [], args.shards, analyzer)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    parts = [split_batch(batch, [], 1, analyzer, TYPES)[0][0] for batch in batches]
    changed = [[{**d, "title": f"{d.get('title', '')} (updated)"} for d in batch] for batch in batches]
    updates = [split_batch(batch, [], 1, analyzer, TYPES)[0][0] for batch in changed]
    insert_ms, update_ms = apply_ms_per_doc(parts, updates, args.rounds)
    print(f"ShardIndex.apply (typed Debian fields, 1 shard): new documents {insert_ms:.3f} ms/doc, "
          f"the same ids again, changed {update_ms:.3f} ms/doc ({update_ms / insert_ms:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
