"""Cost of having many indexes: single-document PUT latency (durable and searchable,
i.e. persisted to MongoDB) and idle CPU of the persistence actor, with 1 index and then
with `--indexes` idle indexes beside it.

    python benchmarks/many_indexes.py                  # 100 idle indexes of 2 shards
    python benchmarks/many_indexes.py --indexes 50 --puts 100

Starts its own throwaway local service (local MongoDB server, Ray, Serve on a free port).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (benchmarks/run.py: the process sampler)


def _puts(http, index: str, count: int) -> list[float]:
    out = []
    for i in range(count):
        t = time.perf_counter()
        r = http.put(f"/indexes/{index}/documents/doc-{i}", json={"title": f"document {i}", "body": "many indexes"})
        r.raise_for_status()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _summary(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    return f"{name}: PUT p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, mean {statistics.mean(ms):.1f} ms ({len(ms)} PUTs)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--indexes", type=int, default=100, help="idle indexes created beside the measured one")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--puts", type=int, default=200)
    p.add_argument("--idle-s", type=float, default=10.0, help="seconds of idle persistence CPU measured")
    args = p.parse_args(argv)

    import httpx
    from raysearch.config import Settings
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    settings = Settings.from_env(data_dir=tempfile.mkdtemp(prefix="raysearch-many-"), port=free_port())
    settings.mongo_uri = None
    service = LocalService(settings, dashboard=False).start()
    try:
        http = httpx.Client(base_url=service.url, timeout=120)
        sampler = bench.ProcessSampler()
        http.put("/indexes/measured", json={"shards": args.shards}).raise_for_status()
        _puts(http, "measured", 20)  # warm up

        def idle_cpu() -> str:
            """CPU of the service's processes while nothing is asked of it, by role (% of a core)."""
            sampler.reset()
            time.sleep(args.idle_s)
            sampler.sample()
            summary = sampler.summary()
            top = list(summary["cpu_s_by_role"].items())[:6]
            return f"{summary['cpu_s_total'] / args.idle_s:.0%} of a core, " + ", ".join(
                f"{role} {s / args.idle_s:.1%}" for role, s in top)

        lines = [_summary("1 index", _puts(http, "measured", args.puts)),
                 f"1 index: idle CPU {idle_cpu()}"]
        t = time.perf_counter()
        for i in range(args.indexes):
            http.put(f"/indexes/idle-{i}", json={"shards": args.shards}).raise_for_status()
            http.put(f"/indexes/idle-{i}/documents/one", json={"title": "idle"}).raise_for_status()
        print(f"created {args.indexes} indexes of {args.shards} shards in {time.perf_counter() - t:.1f} s", flush=True)
        lines += [_summary(f"{args.indexes + 1} indexes", _puts(http, "measured", args.puts)),
                  f"{args.indexes + 1} indexes: idle CPU {idle_cpu()}"]
        print("\n".join(lines))
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
