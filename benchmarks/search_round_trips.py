#!/usr/bin/env python
"""Where a search's time goes: actor round trips versus work, from a driver.

    python benchmarks/search_round_trips.py [--docs 64000] [--queries 600] [--corpus PATH]

Starts a fresh local service (as run.py does), bulk-indexes --docs Debian documents
(run.py's corpus: benchmarks/data/debian/docs.jsonl.gz, built when missing),
then from this driver (through SearchService, the in-cluster API) times, per query:
one asyncio.gather of `ping` to every shard (the bare fan-out), the statistics round,
the scoring round, and a whole search. It also times the persistence drain's calls on
an idle shard (`collect_changes`, `ack_changes`), which run every cycle beside searches,
and lists pings slower than 15 ms with their time offsets (a periodic stall shows as
evenly spaced marks). Prints p50/p90/p99/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import run  # noqa: E402  (benchmarks/run.py: corpus loading)


def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    pick = lambda q: ms[min(len(ms) - 1, int(len(ms) * q))]  # noqa: E731
    return f"p50 {pick(0.5):.2f}  p90 {pick(0.9):.2f}  p99 {pick(0.99):.2f}  max {ms[-1]:.2f}"


async def measure(service, index: str, queries: list[str]) -> None:
    from raysearch.models import SearchRequest
    from raysearch.search.plan import analyze_clauses
    from raysearch.search.query import parse_query

    _, target = await service.index(index)
    analyzer, shards = target.analyzer, [shard.handle for shard in target.shards]
    for name, call in (("drain collect_changes, idle shard", lambda sh: sh.collect_changes.remote(50_000)),
                       ("drain ack_changes, idle shard", lambda sh: sh.ack_changes.remote([]))):
        times = []
        for _ in range(20):
            t = time.perf_counter()
            await call(shards[0])
            times.append((time.perf_counter() - t) * 1000)
        print(f"{name:36s} {summary(times)}")
    started, slow = time.perf_counter(), []
    for _ in range(1500):
        t = time.perf_counter()
        await asyncio.gather(*[sh.ping.remote() for sh in shards])
        if time.perf_counter() - t > 0.015:
            slow.append((round(t - started, 2), round((time.perf_counter() - t) * 1000, 1)))
    print(f"pings slower than 15 ms: {len(slow)} of 1500 over {time.perf_counter() - started:.1f} s: {slow[:20]}")
    rounds = {"ping round (all shards)": [], "statistics round": [], "scoring round": [], "whole search": []}
    for q in queries:
        t0 = time.perf_counter()
        await asyncio.gather(*[sh.ping.remote() for sh in shards])
        t1 = time.perf_counter()
        clauses = analyze_clauses(parse_query(q, lambda f: False), analyzer, [("_all", 1.0)])
        plan = await service.coordinator._plan(target, clauses, {})
        t2 = time.perf_counter()
        await asyncio.gather(*[sh.search.remote(plan, 10) for sh in shards])
        t3 = time.perf_counter()
        await service.search(index, SearchRequest(q=q, size=10))
        t4 = time.perf_counter()
        for times, dt in zip(rounds.values(), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times.append(dt * 1000)
    for name, times in rounds.items():
        print(f"{name:36s} {summary(times)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=64_000)
    p.add_argument("--queries", type=int, default=600)
    p.add_argument("--corpus", default=None, metavar="PATH", help="as in run.py (default: the Debian corpus, built when missing)")
    args = p.parse_args()

    from raysearch.client import Client
    from raysearch.config import Settings
    from raysearch.incluster import InClusterClient
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    corpus = run.corpus_path(args.corpus)  # before the service starts: building it takes a while
    data_dir = tempfile.mkdtemp(prefix="raysearch-rt-")
    service = LocalService(Settings.from_env(data_dir=data_dir, port=free_port()), dashboard=False).start()
    try:
        docs = run.load_docs(args.docs, corpus)
        Client(service.url).bulk_index("rt", docs, wait=True)
        rng = random.Random(7)
        words = [w for d in docs[:2000] for w in d.get("title", "").split() if w.isalpha()]
        queries = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))) for _ in range(args.queries)]
        client = InClusterClient(service.settings)
        gc.collect()
        gc.freeze()  # the corpus in this driver stays out of the GC's full passes
        print(f"{len(docs):,} docs, {service.settings.shards} shards, {len(queries)} queries; times in ms")
        client._run(measure(client.service, "rt", queries))
    finally:
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
