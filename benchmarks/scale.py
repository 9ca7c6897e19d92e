"""Scale benchmark: the Debian corpus N times under new ids (x16 = about 1M documents).

    python benchmarks/run.py --scale 16 [--corpus PATH] [--out DIR]
    python benchmarks/scale.py --copies 16          (the same)

Measures, as the index grows one copy (~64k docs) at a time: indexing rate per slice
(to searchable), search p50/p99 over HTTP (plain, filtered, sorted, faceted) at 1, 2,
4, 8, 16 copies -- right after the slice (persistence and compaction still running) and
again once background work has settled --, GET /indexes/{index} latency, service PSS,
MongoDB data size (dbStats) and RocksDB bytes on disk. Then an update round (as many ids
as one copy holds, drawn at random from the whole index, changed, in random order),
MongoDB after compaction, and a restart of the Ray side to ready with its first searches.
Writes scale.json and scale.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import run as bench  # noqa: E402  (benchmarks/run.py: corpus, sampler, latency helpers)

INDEX = "scale"


def copy_of(corpus: list[dict], k: int, tag: str = "") -> list[dict]:
    """Copy k of the corpus under new ids (k = 0: the original ids)."""
    out = []
    for doc in corpus:
        d = dict(doc)
        if k:
            d["id"] = f"{doc['id']}~{k}"
        if tag:
            d["body"] = f"{d.get('body', '')} {tag}"
        out.append(d)
    return out


def mongo_data_bytes(uri: str, db: str) -> int:
    from pymongo import MongoClient

    client = MongoClient(uri)
    try:
        return int(client[db].command("dbStats")["dataSize"])
    finally:
        client.close()


def index_info_ms(http, repeats: int = 20) -> float:
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        http.get(f"/indexes/{INDEX}").raise_for_status()
        seconds.append(time.perf_counter() - t)
    return round(bench.percentile(seconds, 50) * 1000, 2)


def compact_everything(settings) -> list[dict]:
    import ray

    from raysearch.actors import registry
    from raysearch.config import NAMESPACE

    persistence = ray.get_actor(registry.PERSISTENCE, namespace=NAMESPACE)
    ray.get(persistence.flush.remote(), timeout=3600)
    shards = settings.shards
    return [ray.get(persistence.compact.remote(INDEX, n), timeout=3600) for n in range(shards)]


def settle_background_compaction(timeout_s: float = 900) -> dict:
    """Wait until the background compactor has nothing due (every shard's history below its
    trigger): what MongoDB holds without anyone asking for a compaction."""
    import ray

    from raysearch.actors import registry
    from raysearch.config import NAMESPACE

    persistence = ray.get_actor(registry.PERSISTENCE, namespace=NAMESPACE)
    ray.get(persistence.flush.remote(), timeout=3600)
    started = time.perf_counter()
    status = ray.get(persistence.status.remote(), timeout=60)
    while time.perf_counter() - started < timeout_s:
        status = ray.get(persistence.status.remote(), timeout=60)
        if not any(log.get("compaction_due") for log in status.get("logs", {}).values()):
            break
        time.sleep(2)
    return {"seconds": round(time.perf_counter() - started, 1), "compactions": status.get("compactions"),
            "logs": status.get("logs")}


def settle(idle_s: float = 5.0, timeout_s: float = 600) -> None:
    """Background work done on the benchmark's index (run.py's settle)."""
    bench.settle(INDEX, idle_s, timeout_s)


def random_updates(corpus: list[dict], copies: int, count: int, seed: int = 11) -> list[dict]:
    """`count` existing ids drawn at random from all copies (no repeats), changed, shuffled."""
    rng = random.Random(seed)
    drawn = rng.sample(range(len(corpus) * copies), count)
    out = []
    for n in drawn:
        k, i = divmod(n, len(corpus))
        (doc,) = copy_of([corpus[i]], k, tag="updated")
        out.append(doc)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, default=16, help="copies of the corpus (16: about 1M docs)")
    p.add_argument("--corpus", default=None, metavar="PATH")
    p.add_argument("--queries", type=int, default=200, help="queries per search measurement")
    p.add_argument("--out", default=str(bench.DEFAULT_OUT), help="directory for scale.json and scale.md")
    p.add_argument("--limit", type=int, default=None, help="use only the first N corpus records (trial runs)")
    args = p.parse_args(argv)

    import httpx

    from raysearch.analysis.analyzer import Analyzer
    from raysearch.client import Client
    from raysearch.config import Settings
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    corpus = bench.load_docs(args.limit, bench.corpus_path(args.corpus))
    analyzer = Analyzer()
    drawn = bench.draw_queries(corpus, bench.WARMUP + args.queries, analyzer)
    warm, queries = drawn[:bench.WARMUP], drawn[bench.WARMUP:]
    data_dir = tempfile.mkdtemp(prefix="raysearch-scale-")
    settings = Settings.from_env(data_dir=data_dir, port=free_port())
    settings.mongo_uri = None
    service = LocalService(settings, dashboard=False)
    sampler = bench.ProcessSampler()
    report: dict = {"command": " ".join(["python", "benchmarks/scale.py", *(argv or sys.argv[1:])]),
                    "environment": bench.environment(), "corpus_records": len(corpus), "slices": [],
                    "search": [], "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    checkpoints = {1, 2, 4, 8, 16, args.copies}
    print(f"starting a local service (data in {data_dir}) ...", flush=True)
    try:
        t = time.perf_counter()
        service.start()
        report["startup_s"] = round(time.perf_counter() - t, 2)
        s = service.settings
        sampler.start()
        client = Client(service.url, timeout=600)
        http = httpx.Client(base_url=service.url, timeout=120)
        client.create_index(INDEX, {"fields": bench.DEBIAN_FIELDS})
        distinct = len({d["id"] for d in corpus})
        for k in range(args.copies):
            docs = copy_of(corpus, k)
            m = bench.measure_bulk(client, INDEX, docs, sampler, create=False,
                                   expect_documents=distinct * (k + 1))
            row = {"slice": k + 1, "documents_total": (k + 1) * len(corpus),
                   "searchable_docs_per_s": m["searchable_docs_per_s"],
                   "completed_docs_per_s": m["completed_docs_per_s"],
                   "pss_mb": m["memory"]["pss_mb_at_end"], "peak_rss_mb": m["memory"]["peak_rss_mb"]}
            print(f"slice {k + 1}/{args.copies}: {row}", flush=True)
            if k + 1 in checkpoints:
                info = http.get(f"/indexes/{INDEX}").json()
                row.update({"documents": info["documents"], "rocksdb_bytes": info.get("bytes_on_disk"),
                            "mongodb_data_bytes": mongo_data_bytes(s.mongo_uri, s.mongo_db),
                            "index_info_p50_ms": index_info_ms(http)})
                lat = bench.structured_latency(service.url, INDEX, queries, warm)
                settle()
                settled = bench.structured_latency(service.url, INDEX, queries, warm)
                report["search"].append({"documents": info["documents"], **lat, "settled": settled})
                for when, figures in (("right after the slice", lat), ("settled", settled)):
                    print(f"  at {info['documents']:,} docs, {when}: " + ", ".join(
                        f"{kind} p50/p99 {figures[kind]['p50_ms']}/{figures[kind]['p99_ms']} ms"
                        for kind in ("unfiltered", "filtered", "sorted_by_field", "faceted")), flush=True)
                print(f"  GET /indexes p50 {row['index_info_p50_ms']} ms, RocksDB {row['rocksdb_bytes']:,} B, "
                      f"MongoDB dataSize {row['mongodb_data_bytes']:,} B", flush=True)
            report["slices"].append(row)
            save(report, args.out, partial=True)  # a run cut short (memory, time) keeps its slices

        print(f"update round: {len(corpus):,} existing ids drawn at random, changed ...", flush=True)
        settle()
        before = mongo_data_bytes(s.mongo_uri, s.mongo_db)
        m = bench.measure_bulk(client, INDEX, random_updates(corpus, args.copies, len(corpus)), sampler,
                               create=False, expect_documents=distinct * args.copies)
        report["update"] = {"documents": len(corpus), "searchable_docs_per_s": m["searchable_docs_per_s"],
                            "insert_docs_per_s_first_slice": report["slices"][0]["searchable_docs_per_s"],
                            "insert_docs_per_s_last_slice": report["slices"][-1]["searchable_docs_per_s"],
                            "mongodb_bytes_before": before,
                            "mongodb_bytes_after_update": mongo_data_bytes(s.mongo_uri, s.mongo_db)}
        report["update"]["background"] = settle_background_compaction()
        report["update"]["mongodb_bytes_after_background_compaction"] = mongo_data_bytes(s.mongo_uri, s.mongo_db)
        t = time.perf_counter()
        report["update"]["compaction"] = compact_everything(s)
        report["update"]["compaction_s"] = round(time.perf_counter() - t, 2)
        report["update"]["mongodb_bytes_after_compaction"] = mongo_data_bytes(s.mongo_uri, s.mongo_db)
        report["update"]["rocksdb_bytes"] = http.get(f"/indexes/{INDEX}").json().get("bytes_on_disk")
        print(f"  {report['update']}", flush=True)

        print("restart of the Ray side (MongoDB and the data stay) ...", flush=True)
        http.close()
        sampler.stop()
        service.stop_ray()
        t = time.perf_counter()
        service.start()
        ready = time.perf_counter() - t
        http = httpx.Client(base_url=service.url, timeout=120)
        first = []
        for q in queries[:20]:
            t = time.perf_counter()
            http.post(f"/indexes/{INDEX}/search", json={"q": q, "size": 10}).raise_for_status()
            first.append(time.perf_counter() - t)
        report["restart"] = {"ready_s": round(ready, 2), "first_20_searches": bench.latency_summary(first)}
        print(f"  {report['restart']}", flush=True)
        http.close()
    finally:
        sampler.stop()
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    save(report, args.out, partial=False)
    print(markdown(report))
    return 0


def save(report: dict, out_dir: str, partial: bool) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report["complete"] = not partial
    (out / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "scale.md").write_text(markdown(report))


def markdown(r: dict) -> str:
    title = "raysearch scale benchmark" + ("" if r.get("complete") else " (partial: the run had not finished)")
    lines = [f"# {title} — {r['started_at']}", "", f"`{r['command']}`  ",
             f"commit {r['environment']['commit']}, {r['environment']['cpus']} CPUs; "
             f"{r['corpus_records']:,} records per copy; service ready in {r.get('startup_s')} s", "",
             "| slice | docs in index | searchable docs/s | completed docs/s | PSS MB | RocksDB MB | MongoDB MB "
             "| GET /indexes/{i} p50 ms |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in r["slices"]:
        mb = lambda v: f"{v / 1e6:,.0f}" if v else "—"  # noqa: E731
        lines.append(f"| {x['slice']} | {x['documents_total']:,} | {x['searchable_docs_per_s']} | "
                     f"{x['completed_docs_per_s']} | {x['pss_mb']} | {mb(x.get('rocksdb_bytes'))} | "
                     f"{mb(x.get('mongodb_data_bytes'))} | {x.get('index_info_p50_ms', '—')} |")
    if r["slices"] and r["slices"][0]["searchable_docs_per_s"] and r["slices"][-1]["searchable_docs_per_s"]:
        first, last = r["slices"][0]["searchable_docs_per_s"], r["slices"][-1]["searchable_docs_per_s"]
        lines += ["", f"Last slice's indexing rate ÷ first: {last / first:.2f}", ""]
    lines += ["| docs | plain p50 / p99 ms | filtered p50 / p99 | sorted by field p50 / p99 | faceted p50 / p99 "
              "| filter-only sorted p50 |", "|---:|---|---|---|---|---:|"]
    for x in r["search"]:
        f = lambda k: f"{x[k]['p50_ms']} / {x[k]['p99_ms']}"  # noqa: E731
        lines.append(f"| {x['documents']:,} | {f('unfiltered')} | {f('filtered')} | {f('sorted_by_field')} | "
                     f"{f('faceted')} | {x['filter_only_sorted']['p50_ms']} |")
    if len(r["search"]) > 1:
        a, b = r["search"][0], r["search"][-1]
        lines += ["", f"p50 at {b['documents']:,} ÷ p50 at {a['documents']:,}: plain "
                  f"{b['unfiltered']['p50_ms'] / a['unfiltered']['p50_ms']:.2f}, filtered ÷ unfiltered at the largest: "
                  f"{b['filtered']['p50_ms'] / b['unfiltered']['p50_ms']:.2f}"]
    settled = [x for x in r["search"] if x.get("settled")]
    if settled:
        lines += ["", f"Settled (every change persisted, every shard's snapshot written, the machine's CPU below {bench.QUIET_CPU_PERCENT:.0f} % for 3 s, then idle 5 s), the same queries:", "",
                  "| docs | plain p50 / p99 ms | filtered p50 / p99 | sorted by field p50 / p99 | faceted p50 / p99 |",
                  "|---:|---|---|---|---|"]
        for x in settled:
            f = lambda k: f"{x['settled'][k]['p50_ms']} / {x['settled'][k]['p99_ms']}"  # noqa: E731
            lines.append(f"| {x['documents']:,} | {f('unfiltered')} | {f('filtered')} | {f('sorted_by_field')} | "
                         f"{f('faceted')} |")
        if len(settled) > 1:
            a, b = settled[0]["settled"], settled[-1]["settled"]
            ratio = lambda k, q: b[k][q] / a[k][q]  # noqa: E731
            lines += ["", f"Settled, largest ÷ first: p50 plain {ratio('unfiltered', 'p50_ms'):.2f}, filtered "
                      f"{ratio('filtered', 'p50_ms'):.2f}, faceted {ratio('faceted', 'p50_ms'):.2f}; p99 plain "
                      f"{ratio('unfiltered', 'p99_ms'):.2f}, filtered {ratio('filtered', 'p99_ms'):.2f}, faceted "
                      f"{ratio('faceted', 'p99_ms'):.2f}"]
    u = r.get("update")
    if u:
        lines += ["", f"Update round ({u['documents']:,} existing ids drawn at random): {u['searchable_docs_per_s']} docs/s "
                  f"({u['searchable_docs_per_s'] / u['insert_docs_per_s_first_slice']:.2f}× the first insert slice, "
                  f"{u['searchable_docs_per_s'] / u.get('insert_docs_per_s_last_slice', u['insert_docs_per_s_first_slice']):.2f}× the last); "
                  f"MongoDB {u['mongodb_bytes_before'] / 1e6:,.0f} MB before, {u['mongodb_bytes_after_update'] / 1e6:,.0f} MB "
                  f"after, {u.get('mongodb_bytes_after_background_compaction', 0) / 1e6:,.0f} MB once the "
                  f"background compactor had nothing due ({u.get('background', {}).get('seconds')} s), "
                  f"{u['mongodb_bytes_after_compaction'] / 1e6:,.0f} MB after a forced compaction "
                  f"({u['compaction_s']} s); RocksDB {(u['rocksdb_bytes'] or 0) / 1e6:,.0f} MB."]
    rs = r.get("restart")
    if rs:
        lines += ["", f"Restart of the Ray side to ready: {rs['ready_s']} s (an empty service: {r.get('startup_s')} s); "
                  f"first 20 searches p50 {rs['first_20_searches']['p50_ms']} ms, p99 {rs['first_20_searches']['p99_ms']} ms."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
