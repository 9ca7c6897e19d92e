#!/usr/bin/env python
"""Where a search's time goes over HTTP: the framework floor, a round to the shards, a
repeated query, a query of new terms, from one sequential HTTP client.

    python benchmarks/search_paths.py [--docs 64000] [--ingress haproxy|proxy]

Starts a fresh local service (raysearch.runner.LocalService, as run.py does), bulk-indexes
--docs Debian documents, then times 1,000 requests of each kind: GET /healthz (Serve and
the ingress, no search), GET /indexes/{index} (one round to the shards), a search repeated
from 50 (its statistics cached), searches of queries never asked (1–3 words drawn from the
corpus), the same with size 0 (no documents); then the repeated and new searches through
the in-cluster API (SearchService in this driver). Prints p50/p90/p99 in ms.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import run  # noqa: E402  (benchmarks/run.py: corpus, bulk measurement)


def summary(name: str, seconds: list[float]) -> None:
    s = sorted(seconds)
    pick = lambda q: s[min(len(s) - 1, int(len(s) * q))] * 1000  # noqa: E731
    print(f"{name:32s} n={len(s)}  p50 {pick(0.5):.2f}  p90 {pick(0.9):.2f}  p99 {pick(0.99):.2f}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=64000)
    p.add_argument("--ingress", choices=("haproxy", "proxy"), default="haproxy")
    args = p.parse_args()

    import httpx

    from raysearch.analysis.analyzer import Analyzer
    from raysearch.app.service import SearchService
    from raysearch.client import Client
    from raysearch.config import Settings
    from raysearch.models import SearchRequest
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    docs = run.load_docs(args.docs, run.corpus_path())
    data_dir = tempfile.mkdtemp(prefix="raysearch-paths-")
    settings = Settings.from_env(data_dir=data_dir, port=free_port(), ingress=args.ingress)
    settings.mongo_uri = None
    service = LocalService(settings, dashboard=False).start()
    try:
        print(run.measure_bulk(Client(service.url), "paths", docs, None)["searchable_docs_per_s"], "docs/s", flush=True)
        queries = run.draw_queries(docs, 3000, Analyzer())
        time.sleep(3)
        with httpx.Client(base_url=service.url, timeout=60) as http:
            for q in queries[:100]:
                http.post("/indexes/paths/search", json={"q": q, "size": 10})
            kinds = [("GET /healthz", lambda i: http.get("/healthz")),
                     ("GET /indexes/{index}", lambda i: http.get("/indexes/paths")),
                     ("search, repeated", lambda i: http.post("/indexes/paths/search",
                                                             json={"q": queries[i % 50], "size": 10})),
                     ("search, new terms", lambda i: http.post("/indexes/paths/search",
                                                              json={"q": queries[200 + i], "size": 10})),
                     ("search, new terms, size 0", lambda i: http.post("/indexes/paths/search",
                                                                      json={"q": queries[1500 + i], "size": 0}))]
            for name, call in kinds:
                seconds = []
                for i in range(1000):
                    t = time.perf_counter()
                    r = call(i)
                    seconds.append(time.perf_counter() - t)
                    r.raise_for_status()
                summary(name, seconds)
        api = SearchService(service.settings)

        async def in_cluster():
            for name, pick in (("API, repeated", lambda i: queries[i % 50]),
                               ("API, new terms", lambda i: queries[2600 + i % 400])):
                seconds = []
                for i in range(300):
                    t = time.perf_counter()
                    await api.search("paths", SearchRequest(q=pick(i), size=10))
                    seconds.append(time.perf_counter() - t)
                summary(name, seconds)

        asyncio.run(in_cluster())
    finally:
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
