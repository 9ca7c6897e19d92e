"""An IndexWorker's own work per document, in process: `split_batch` (analysis, posting
blocks, stored JSON, T entries) over batches of the Debian corpus, with one long-lived
Analyzer as in a worker. Prints ms per document, best of `--rounds`.

    python benchmarks/batch_build.py                 # 20,000 docs, batches of 500, 2 shards
    python benchmarks/batch_build.py --docs 5000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import run as bench  # noqa: E402  (benchmarks/run.py: the corpus)

from raysearch.analysis.analyzer import Analyzer  # noqa: E402
from raysearch.index.batch import split_batch  # noqa: E402


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
