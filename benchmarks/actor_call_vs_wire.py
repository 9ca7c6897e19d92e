#!/usr/bin/env python
"""One read call to an actor: through Ray, and over a kept-open TCP connection to a
thread server in the same actor (the shape of raysearch/actors/wire.py).

    python benchmarks/actor_call_vs_wire.py [--calls 2000]

The actor answers a search-sized reply (ten hits and ten 500-byte documents) to an
asyncio caller; prints p50/p90/p99 in ms for each path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ANSWER = {"hits": [[1.234, f"doc{i}", []] for i in range(10)], "total": 1234, "documents": [b"x" * 500] * 10}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000)
    args = p.parse_args()

    import ray

    from raysearch.actors.wire import WireClient, WireServer

    ray.init(address="local", include_dashboard=False, log_to_driver=False)

    @ray.remote(max_concurrency=16)
    class Shard:
        def __init__(self):
            self.wire = WireServer(lambda method, a: self.search(*a), frozenset({"search"}), "127.0.0.1")

        def address(self):
            return (*self.wire.address, self.wire.token)

        def search(self, plan, k):
            return ANSWER

    shard = Shard.remote()
    host, port, token = ray.get(shard.address.remote())
    plan = ("plan", [("title", "term", 1.0)] * 3)

    async def measure():
        wire = WireClient((host, port), token)
        for name, call in (("Ray actor call", lambda: shard.search.remote(plan, 10)),
                           ("wire (kept-open TCP)", lambda: wire.call("search", plan, 10))):
            for _ in range(100):
                await call()
            seconds = []
            for _ in range(args.calls):
                t = time.perf_counter()
                await call()
                seconds.append(time.perf_counter() - t)
            s = sorted(seconds)
            pick = lambda q: s[min(len(s) - 1, int(len(s) * q))] * 1000  # noqa: E731
            print(f"{name:22s} p50 {pick(0.5):.3f}  p90 {pick(0.9):.3f}  p99 {pick(0.99):.3f} ms", flush=True)

    asyncio.run(measure())
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
