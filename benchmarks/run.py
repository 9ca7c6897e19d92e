#!/usr/bin/env python
"""raysearch benchmark: bulk indexing, search latency and throughput, memory,
side by side with tantivy and SQLite FTS5 on the same documents and queries.

    python benchmarks/run.py [--docs 16000,all] [--queries 1000] [--out DIR] [--smoke] [--corpus PATH]

Starts a fresh local service (raysearch.runner.LocalService: its own local
MongoDB server, Ray and Serve, a temporary data directory, a free port), then
measures on the Debian corpus (benchmarks/data/debian/docs.jsonl.gz, built by
scripts/build_debian_corpus.py on first use; --corpus PATH reads another file):

- bulk indexing through the Python client over HTTP, each size into a fresh
  index: seconds and docs/s until every document is searchable (every batch
  indexed and GET /indexes/{index} counts the distinct ids) and until every
  operation is `completed` (persisted to MongoDB);
- search latency (p50/p99) of the same queries (1-3 words drawn from the corpus
  with a fixed seed, top 10) over HTTP, sequentially, first right after the bulk
  (its persistence, compactions and snapshots still running), then settled (`settle`:
  every change persisted, every snapshot written, the machine quiet) as every later
  figure: sequentially, through the in-cluster Python API (SearchService in the
  driver), filtered, sorted and faceted, and throughput with 8 concurrent HTTP clients;
- peak total RSS of the service's processes (the driver and every descendant:
  raylet, gcs_server, Ray workers/actors, the MongoDB server) during each bulk,
  sampled every 0.5 s from /proc, and CPU seconds per process role;
- tantivy (one writer thread) and SQLite FTS5 on the same documents, tokenised
  by raysearch's Analyzer (terms joined by spaces), same queries (OR of terms,
  top 10): build docs/s and query p50/p99, and raysearch's ratio to each.

Writes benchmark.json and benchmark.md to --out (default benchmarks/results/)
and prints the table. `--smoke` runs 500 and 1,500 documents and 50 queries and
skips nothing (CI keeps this file working through
tests/integration/test_benchmark_smoke.py).

`run_benchmarks(service_url, settings=...)` runs the same measurements against a
service that is already running; the in-cluster API measurement needs the
caller to be a Ray driver of that cluster and to pass its Settings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local, throwaway cluster

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO / "benchmarks" / "data" / "debian" / "docs.jsonl.gz"  # git-ignored, built on first use
BUILD_CORPUS = REPO / "scripts" / "build_debian_corpus.py"
DEFAULT_OUT = REPO / "benchmarks" / "results"
SEED = 7
WARMUP = 20  # queries run before timing, drawn apart from the timed ones
SMOKE_WORKERS = 4  # smoke mode: a light service (CI runs it beside the test suite's own)

# ---------------------------------------------------------------- corpus


def corpus_path(path: str | Path | None = None) -> Path:
    """The corpus file to read: `path` (FileNotFoundError if missing), else
    DEFAULT_CORPUS, which scripts/build_debian_corpus.py builds when it is
    missing (apt-get update of Debian bookworm main into a private directory)."""
    if path is not None:
        if not Path(path).exists():
            raise FileNotFoundError(f"corpus not found: {path}")
        return Path(path)
    if not DEFAULT_CORPUS.exists():
        print(f"{DEFAULT_CORPUS.relative_to(REPO)} is missing: building it with "
              f"{BUILD_CORPUS.relative_to(REPO)} (downloads Debian's package lists) ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(BUILD_CORPUS), "--out", str(DEFAULT_CORPUS)], check=True)
    return DEFAULT_CORPUS


def load_docs(limit: int | None = None, path: str | Path | None = None) -> list[dict]:
    """The first `limit` records of the corpus (corpus_path(path)). Warns when the records
    lack the typed Debian fields: filtered, sorted and faceted searches would then measure
    fields no document has (a copy of the corpus may hold id, title and body only;
    scripts/build_debian_corpus.py --enrich adds them offline from a Debian 12 machine's
    own Packages list)."""
    out: list[dict] = []
    with gzip.open(corpus_path(path), "rt", encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(out) >= limit:
                break
            if line.strip():
                out.append(json.loads(line))
    typed = sum("section" in d for d in out)
    if out and typed < len(out) // 2:
        print(f"warning: only {typed:,} of {len(out):,} records have the typed Debian fields (section, priority, "
              f"sizes): filtered, sorted and faceted figures measure absent fields. Add them with "
              f"python scripts/build_debian_corpus.py --enrich {corpus_path(path)}", file=sys.stderr, flush=True)
    return out


_WORD = re.compile(r"[A-Za-z]{3,}")


def draw_queries(docs: list[dict], count: int, analyzer, seed: int = SEED) -> list[str]:
    """1-3 words drawn from random documents with a fixed seed; only queries that
    keep at least one term after analysis (an all-stop-word query is no work for
    any engine)."""
    rng = random.Random(seed)
    queries: list[str] = []
    while len(queries) < count:
        doc = rng.choice(docs)
        words = _WORD.findall(f"{doc.get('title', '')} {doc.get('body', '')}")
        if not words:
            continue
        q = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        if analyzer.terms(q):
            queries.append(q)
    return queries


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(p / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def latency_summary(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "queries": len(ms),
        "p50_ms": round(statistics.median(ms), 4),
        "p99_ms": round(percentile(ms, 99), 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "max_ms": round(max(ms), 4),
    }


# ------------------------------------------------------ process sampling

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def _read_stat(pid: str) -> tuple[int, float, int] | None:
    """(ppid, cpu seconds, rss bytes) from /proc/PID/stat, or None if it is gone, is
    exiting (its memory already released: rss 0, state still R or S for a moment) or has
    exited and waits to be reaped (state Z or X). Such a process has no command line and no
    memory: counted, it made a role "?" of 0 MB, and the benchmark smoke test failed on it
    now and then (CI at 25454f9 too, after the Z/X filter alone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2 :].split()  # rest[0] is field 3 (state)
    rss = int(rest[21]) * _PAGE
    if rest[0] in ("Z", "X") or rss == 0:
        return None
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / _TICK, rss


def process_role(pid: int, root: int) -> str:
    """A stable label for a process: driver, raylet, gcs_server, secantusd,
    ray::IndexWorker, ray::ShardStore, ray::ServeReplica:..., ..."""
    if pid == root:
        return "driver"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "?"
    if not argv:
        return "?"
    first = argv[0].strip()
    if first.startswith("ray::"):  # Ray worker proctitle: ray::Class.method, ray::IDLE, ...
        title = first.split()[0].split(".")[0]
        if title.startswith("ray::raysearch:"):  # ray::raysearch:shard:idx:0:ShardStore (a named actor starting)
            title = "ray::" + title.rsplit(":", 1)[-1]
        return title
    for arg in argv:
        if arg.endswith("secantusd-py") or "secantus" in os.path.basename(arg):
            return "secantusd"
    name = os.path.basename(first.split()[0])
    if name.startswith("python"):
        for arg in argv[1:]:
            if arg.endswith(".py"):
                return os.path.basename(arg)[:-3]
            if not arg.startswith("-"):
                return os.path.basename(arg)
    return name


def process_tree(root: int) -> dict[int, tuple[float, int]]:
    """pid -> (cpu seconds, rss bytes) for `root` and all its descendants."""
    table: dict[int, tuple[int, float, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _read_stat(name)
            if st is not None:
                table[int(name)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in out:
            out[pid] = table[pid][1:]
            todo.extend(children.get(pid, ()))
    return out


def pss_total(pids) -> int:
    """Proportional set size (shared pages divided among their users), bytes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


class ProcessSampler(threading.Thread):
    """Every `interval` s: total RSS of the process tree under `root` (peak kept,
    with its breakdown by role) and CPU seconds per process (for CPU by role)."""

    def __init__(self, root: int | None = None, interval: float = 0.5):
        super().__init__(daemon=True, name="rss-sampler")
        self.root = root or os.getpid()
        self.interval = interval
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            tree = process_tree(self.root)
            self._cpu_base = {pid: cpu for pid, (cpu, _) in tree.items()}
            self._cpu_last = dict(self._cpu_base)
            self._roles: dict[int, str] = {}
            self.samples = 0
            self.peak_bytes = 0
            self.peak_roles: dict[str, int] = {}
            self.peak_processes = 0
            self.max_load = 0.0
            self._take(tree)

    def _take(self, tree: dict[int, tuple[float, int]]) -> None:
        total = 0
        roles: dict[str, int] = {}
        for pid, (cpu, rss) in tree.items():
            role = self._roles.get(pid)
            if role is None or role in ("ray::IDLE", "?", "default_worker"):
                role = self._roles[pid] = process_role(pid, self.root)
            roles[role] = roles.get(role, 0) + rss
            total += rss
            self._cpu_last[pid] = cpu
        self.samples += 1
        self.max_load = max(self.max_load, os.getloadavg()[0])
        if total > self.peak_bytes:
            self.peak_bytes, self.peak_roles, self.peak_processes = total, roles, len(tree)

    def sample(self) -> None:
        tree = process_tree(self.root)
        with self._lock:
            self._take(tree)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def summary(self) -> dict:
        with self._lock:
            cpu: dict[str, float] = {}
            for pid, last in self._cpu_last.items():
                role = self._roles.get(pid) or process_role(pid, self.root)
                cpu[role] = cpu.get(role, 0.0) + last - self._cpu_base.get(pid, 0.0)
            mb = 1024 * 1024
            return {
                "peak_rss_mb": round(self.peak_bytes / mb, 1),
                "peak_processes": self.peak_processes,
                "peak_rss_mb_by_role": {r: round(b / mb, 1) for r, b in
                                         sorted(self.peak_roles.items(), key=lambda kv: -kv[1])},
                "cpu_s_by_role": {r: round(s, 2) for r, s in sorted(cpu.items(), key=lambda kv: -kv[1]) if s > 0.005},
                "cpu_s_total": round(sum(cpu.values()), 2),
                "samples": self.samples,
                "max_loadavg_1m": round(self.max_load, 2),  # the machine's, other users included
            }


# ------------------------------------------------------------ raysearch


def _chunks(seq: list, size: int):
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


# The Debian corpus's package fields, declared as typed fields (filters, sort, facets).
DEBIAN_FIELDS = {"section": {"type": "keyword"}, "priority": {"type": "keyword"},
                 "architecture": {"type": "keyword"}, "installed_size": {"type": "integer"},
                 "size": {"type": "integer"}, "essential": {"type": "boolean"}}


def measure_bulk(client, index: str, docs: list[dict], sampler: ProcessSampler | None,
                 request_docs: int = 5000, poll_s: float = 0.25, timeout_s: float = 3600,
                 create: bool = True, expect_documents: int | None = None) -> dict:
    """Bulk-index `docs` into the fresh index `index` (created here, with the Debian
    typed fields, unless `create` is false) and time it to searchable and to completed."""
    distinct = len({d["id"] for d in docs})
    expected = distinct if expect_documents is None else expect_documents  # what the index counts once searchable
    if create:
        client.create_index(index, {"fields": DEBIAN_FIELDS})
    if sampler is not None:
        sampler.reset()
    started = time.perf_counter()
    ops, rejected = [], []
    for part in _chunks(docs, request_docs):
        r = client.bulk(index, part)
        ops.append(r["operation_id"])
        rejected += r["errors"]
    acked = time.perf_counter()
    # Poll one operation at a time, the oldest not yet past the current phase (one
    # cheap GET per poll: polling must not load the ingress it measures).
    # Phase "indexed": every batch indexed (then GET /indexes/{index} must count
    # the distinct ids); phase "completed": every operation terminal.
    terminal = ("completed", "partially_completed", "failed")
    searchable = completed = None
    views: dict[str, dict] = {}
    phase, i, recounts, count = "indexed", 0, 0, None
    while True:
        if time.perf_counter() > started + timeout_s:
            raise RuntimeError(f"bulk into {index!r} not finished after {timeout_s}s: {views.get(ops[i])}")
        polled = time.perf_counter()
        views[ops[i]] = v = client.operation(ops[i])
        indexed = v["batches"]["indexed"] == v["batches"]["total"]
        if not (v["status"] in terminal or (phase == "indexed" and indexed)):
            time.sleep(poll_s)
            continue
        i += 1
        if i < len(ops):
            continue
        if phase == "completed":
            completed = time.perf_counter()
            break
        if all(x["batches"]["indexed"] == x["batches"]["total"] for x in views.values()):
            count = client.index(index)["documents"]
            if count == expected:
                searchable = polled
            elif recounts < 120:  # every batch indexed but not counted yet: look again
                recounts, i = recounts + 1, len(ops) - 1
                time.sleep(poll_s)
                continue
        phase, i = "completed", 0
    statuses = sorted({v["status"] for v in views.values()})
    out = {
        "index": index,
        "documents": len(docs),
        "distinct_ids": distinct,
        "requests": len(ops),
        "request_docs": request_docs,
        "batches": sum(v["batches"]["total"] for v in views.values()),
        "rejected": len(rejected),
        "documents_counted": count,
        "status": statuses[0] if len(statuses) == 1 else ",".join(statuses),
        "ack_s": round(acked - started, 3),
        "searchable_s": round(searchable - started, 3) if searchable else None,
        "completed_s": round(completed - started, 3) if completed else None,
    }
    out["searchable_docs_per_s"] = round(len(docs) / out["searchable_s"], 1) if searchable else None
    out["completed_docs_per_s"] = round(len(docs) / out["completed_s"], 1) if completed else None
    if sampler is not None:
        sampler.sample()
        tree = process_tree(sampler.root)
        out["memory"] = sampler.summary()
        # the service's processes: the driver (this benchmark: the HTTP client, the corpus, the
        # latency samples) is left out, as it is of the CPU per query
        out["memory"]["pss_mb_at_end"] = round(pss_total([p for p in tree if p != sampler.root]) / (1024 * 1024), 1)
        out["memory"]["driver_pss_mb_at_end"] = round(pss_total([sampler.root]) / (1024 * 1024), 1)
    return out


def http_latency(url: str, index: str, queries: list[str], warm: list[str]) -> tuple[list[float], list[list[str]]]:
    import httpx

    seconds, ids = [], []
    with httpx.Client(base_url=url, timeout=60, headers=_auth_headers()) as http:
        for q in warm:
            http.post(f"/indexes/{index}/search", json={"q": q, "size": 10}).raise_for_status()
        for q in queries:
            t = time.perf_counter()
            r = http.post(f"/indexes/{index}/search", json={"q": q, "size": 10})
            seconds.append(time.perf_counter() - t)
            r.raise_for_status()
            ids.append([h["id"] for h in r.json()["hits"]])
    return seconds, ids


def sequential_http(url: str, index: str, queries: list[str], warm: list[str],
                    sampler: ProcessSampler | None) -> tuple[dict, list[list[str]]]:
    """(latency summary with the CPU per query of the service's processes, each query's
    ids) of one sequential HTTP client."""
    _cpu_start(sampler)
    seconds, ids = http_latency(url, index, queries, warm)
    summary = latency_summary(seconds)
    summary["cpu"] = cpu_per_query(sampler, len(queries) + len(warm))
    return summary, ids


def structured_latency(url: str, index: str, queries: list[str], warm: list[str]) -> dict:
    """Filtered, sorted and faceted searches over HTTP, sequential, beside the same queries
    unfiltered: (name -> latency summary). The filter keeps the most common section."""
    import httpx

    kinds = {
        "unfiltered": lambda q: {"q": q, "size": 10},
        "all_words": lambda q: {"q": q, "size": 10, "operator": "and"},
        "filtered": lambda q: {"q": q, "size": 10, "filter": {"and": [
            {"terms": {"priority": ["optional", "standard"]}}, {"range": {"installed_size": {"gte": 100}}}]}},
        "filter_only_sorted": lambda q: {"size": 10, "filter": {"term": {"section": "libs"}},
                                         "sort": [{"installed_size": "desc"}]},
        "sorted_by_field": lambda q: {"q": q, "size": 10, "sort": [{"section": "asc"}, {"size": "desc"}]},
        "faceted": lambda q: {"q": q, "size": 10, "facets": {
            "sections": {"terms": {"field": "section", "size": 10}},
            "sizes": {"stats": {"field": "installed_size"}},
            "big": {"histogram": {"field": "size", "interval": 1_000_000}}}},
        "match_all_faceted": lambda q: {"size": 0, "facets": {"sections": {"terms": {"field": "section"}}}},
    }
    out = {}
    with httpx.Client(base_url=url, timeout=60, headers=_auth_headers()) as http:
        for name, body in kinds.items():
            for q in warm:
                http.post(f"/indexes/{index}/search", json=body(q)).raise_for_status()
            seconds = []
            for q in queries:
                t = time.perf_counter()
                r = http.post(f"/indexes/{index}/search", json=body(q))
                seconds.append(time.perf_counter() - t)
                r.raise_for_status()
            out[name] = latency_summary(seconds)
    return out


def api_latency(settings, index: str, queries: list[str], warm: list[str]) -> list[float]:
    """The in-cluster Python API: SearchService's search in this driver, no HTTP, no Serve."""
    from raysearch.models import SearchRequest
    from raysearch.app.service import SearchService

    svc = SearchService(settings)

    async def run() -> list[float]:
        for q in warm:
            await svc.search(index, SearchRequest(q=q, size=10))
        seconds = []
        for q in queries:
            t = time.perf_counter()
            await svc.search(index, SearchRequest(q=q, size=10))
            seconds.append(time.perf_counter() - t)
        return seconds

    try:
        return asyncio.run(run())
    finally:
        svc.mongo.close()


def http_throughput(url: str, index: str, queries: list[str], threads: int = 8) -> dict:
    """`threads` clients, each with its own connection, sharing the query list once."""
    import httpx

    lock = threading.Lock()
    cursor = iter(queries)
    seconds: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(threads + 1)

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60, headers=_auth_headers()) as http:
            http.post(f"/indexes/{index}/search", json={"q": queries[0], "size": 10})  # connect
            barrier.wait()
            while True:
                with lock:
                    q = next(cursor, None)
                if q is None:
                    return
                t = time.perf_counter()
                r = http.post(f"/indexes/{index}/search", json={"q": q, "size": 10})
                dt = time.perf_counter() - t
                with lock:
                    if r.status_code == 200:
                        seconds.append(dt)
                    else:
                        errors.append(f"{r.status_code} {r.text[:200]}")

    pool = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} searches failed under load, e.g. {errors[0]}")
    return {"threads": threads, "queries": len(seconds), "wall_s": round(wall, 3),
            "queries_per_s": round(len(seconds) / wall, 1), "latency": latency_summary(seconds)}


def _cpu_start(sampler: ProcessSampler | None) -> None:
    if sampler is not None:
        sampler.reset()


def cpu_per_query(sampler: ProcessSampler | None, queries: int) -> dict | None:
    """CPU milliseconds per query of the service's processes since `_cpu_start` (the
    driver, where the HTTP clients run, left out), in all and by process role."""
    if sampler is None or not queries:
        return None
    sampler.sample()
    by_role = {role: s for role, s in sampler.summary()["cpu_s_by_role"].items() if role != "driver"}
    return {"ms_per_query": round(sum(by_role.values()) * 1000 / queries, 2),
            "ms_per_query_by_role": {role: round(s * 1000 / queries, 3) for role, s in by_role.items()}}


def _auth_headers() -> dict:
    key = os.environ.get("RAYSEARCH_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


# ------------------------------------------------------------ baselines


def analyze_docs(docs: list[dict]) -> tuple[list[tuple[str, str]], float]:
    """(id, analysed text) per distinct id (a later record replaces an earlier
    one, as in raysearch), with raysearch's default Analyzer over every string
    field, as its `_all` field sees them; and the seconds it took."""
    from raysearch.analysis.analyzer import Analyzer, iter_text_fields

    analyzer = Analyzer()  # a fresh one: its token cache starts empty
    started = time.perf_counter()
    by_id: dict[str, str] = {}
    for doc in docs:
        by_id[doc["id"]] = " ".join(t for _, value in iter_text_fields(doc) for t in analyzer.terms(value))
    return list(by_id.items()), time.perf_counter() - started


def dir_mb(path: str) -> float:
    size = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                size += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return round(size / (1024 * 1024), 2)


def bench_tantivy(rows: list[tuple[str, str]], term_queries: list[list[str]], warm: list[list[str]],
                  workdir: str) -> dict:
    import tantivy

    path = os.path.join(workdir, "tantivy")
    os.makedirs(path, exist_ok=True)
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("text", stored=False, tokenizer_name="ws", index_option="position")
    schema = sb.build()
    index = tantivy.Index(schema, path=path)
    index.register_tokenizer("ws", tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
    started = time.perf_counter()
    cpu0 = time.process_time()
    writer = index.writer(heap_size=128_000_000, num_threads=1)
    for doc_id, text in rows:
        writer.add_document(tantivy.Document(id=doc_id, text=text))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - cpu0
    searcher = index.searcher()
    assert searcher.num_docs == len(rows), (searcher.num_docs, len(rows))

    def search(terms: list[str]) -> list[str]:
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", t)) for t in terms])
        result = searcher.search(query, 10, count=True)
        return [searcher.doc(addr)["id"][0] for _, addr in result.hits]

    for terms in warm:
        search(terms)
    seconds, ids = [], []
    for terms in term_queries:
        t = time.perf_counter()
        ids.append(search(terms))
        seconds.append(time.perf_counter() - t)
    from importlib.metadata import version

    return {"engine": f"tantivy {version('tantivy')}", "build_s": round(build_s, 3),
            "build_cpu_s": round(build_cpu_s, 3), "index_mb": dir_mb(path),
            "latency": latency_summary(seconds), "_ids": ids}


def bench_sqlite(rows: list[tuple[str, str]], term_queries: list[list[str]], warm: list[list[str]],
                 workdir: str) -> dict:
    path = os.path.join(workdir, "fts5.sqlite")
    started = time.perf_counter()
    cpu0 = time.process_time()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    # Terms are \w+ runs already analysed: keep '_' inside a token, touch nothing else.
    con.execute("CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, text, "
                "tokenize=\"unicode61 remove_diacritics 0 tokenchars '_'\")")
    with con:
        con.executemany("INSERT INTO docs(id, text) VALUES (?, ?)", rows)
        con.execute("INSERT INTO docs(docs) VALUES ('optimize')")
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - cpu0
    sql = "SELECT id FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10"

    def search(terms: list[str]) -> list[str]:
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        return [r[0] for r in con.execute(sql, (match,))]

    for terms in warm:
        search(terms)
    seconds, ids = [], []
    for terms in term_queries:
        t = time.perf_counter()
        ids.append(search(terms))
        seconds.append(time.perf_counter() - t)
    con.close()
    return {"engine": f"SQLite {sqlite3.sqlite_version} FTS5", "build_s": round(build_s, 3),
            "build_cpu_s": round(build_cpu_s, 3), "index_mb": round(os.path.getsize(path) / (1024 * 1024), 2),
            "latency": latency_summary(seconds), "_ids": ids}


def overlap_at_10(a: list[list[str]], b: list[list[str]]) -> float:
    """Mean |A ∩ B| / max(|A|, |B|) of two engines' top-10 ids, over queries where either has hits."""
    parts = [len(set(x) & set(y)) / max(len(x), len(y)) for x, y in zip(a, b) if x or y]
    return round(statistics.fmean(parts), 3) if parts else 0.0


# ---------------------------------------------------------------- driver


# settled: the machine's CPU below this share ... (an idle service's Ray and Serve processes
# alone take 11-14 % of this 2-core machine on some days: a 10 % bar was never reached)
QUIET_CPU_PERCENT = 20.0
QUIET_SECONDS = 3  # ... for this many seconds in a row


def settle(index: str, idle_s: float = 5.0, timeout_s: float = 600) -> float:
    """Wait for background work to end; returns the seconds waited. Every change persisted
    (the persistence actor's flush), every shard's snapshot of its statistics written (at 511k
    documents a snapshot is ~0.4 s of a shard's GIL, taken 2 s after its last write), then the
    machine quiet (the MongoDB server and the shards go on working for a while after a large
    bulk: at 511k documents a first round of searches timed 3 s after the flush and the
    snapshots took 74 ms at p50, the same queries right after it 9 ms), then `idle_s` more.
    Past `timeout_s` it returns whatever the state. The caller is a driver of the service's
    Ray cluster."""
    import psutil
    import ray

    from raysearch.actors import names, registry
    from raysearch.config import NAMESPACE

    started = time.perf_counter()
    deadline = time.time() + timeout_s
    persistence = ray.get_actor(registry.PERSISTENCE, namespace=NAMESPACE)
    ray.get(persistence.flush.remote(), timeout=timeout_s)
    shards = [ray.get_actor(name, namespace=NAMESPACE) for name in names.shard_names_of(index)]
    while time.time() < deadline:
        infos = ray.get([shard.info.remote() for shard in shards], timeout=60)
        if all(info["snapshot_opstamp"] == info["last_opstamp"] for info in infos):
            break
        time.sleep(0.5)
    quiet = 0
    psutil.cpu_percent(interval=None)
    while time.time() < deadline and quiet < QUIET_SECONDS:
        busy = psutil.cpu_percent(interval=1.0)  # of all cores, over the last second
        quiet = quiet + 1 if busy < QUIET_CPU_PERCENT else 0
    time.sleep(max(0.0, min(idle_s, deadline - time.time())))
    return time.perf_counter() - started


def run_benchmarks(service_url: str, *, settings=None, sizes: list[int], n_queries: int,
                   corpus: list[dict] | None = None, index_prefix: str = "bench",
                   sampler: ProcessSampler | None = None, request_docs: int = 5000,
                   throughput_threads: int = 8, cleanup: bool = False, settle_timeout_s: float = 600,
                   log=print) -> dict:
    """Every measurement against the running service at `service_url`.

    Each size goes into a fresh index `{index_prefix}-{n}`; all but the largest
    are deleted after their bulk, the largest is searched (and deleted at the
    end with `cleanup`).

    `settings`: the service's Settings, for the in-cluster API measurement (the
    caller must be a Ray driver of that cluster); `sampler`: a ProcessSampler
    whose process tree holds the service, for memory and CPU.
    """
    from raysearch.analysis.analyzer import Analyzer
    from raysearch.client import Client

    if settings is None:
        raise ValueError("settings is required: the in-cluster API measurement needs the service's Settings")
    corpus = corpus if corpus is not None else load_docs(max(sizes))
    sizes = sorted({min(n, len(corpus)) for n in sizes})
    client = Client(service_url, timeout=300)
    result: dict = {"bulk": [], "search": {}, "baselines": {}}
    indexes = []
    try:
        for n in sizes:
            index = f"{index_prefix}-{n}"
            log(f"bulk: {n} documents into {index!r} ...")
            m = measure_bulk(client, index, corpus[:n], sampler, request_docs=request_docs)
            log(f"  searchable in {m['searchable_s']} s ({m['searchable_docs_per_s']} docs/s), "
                f"completed in {m['completed_s']} s, peak RSS {m.get('memory', {}).get('peak_rss_mb')} MB")
            if m["status"] != "completed" or m["searchable_s"] is None:
                raise RuntimeError(f"bulk into {index!r} ended {m['status']}: {m}")
            result["bulk"].append(m)
            indexes.append(index)
            if n != sizes[-1]:  # only the largest index is searched: drop the others so that each
                client.delete_index(index)  # bulk's memory is that of one index
                indexes.remove(index)

        docs = corpus[: sizes[-1]]
        index = indexes[-1]
        analyzer = Analyzer()
        drawn = draw_queries(docs, WARMUP + n_queries, analyzer)
        warm, queries = drawn[:WARMUP], drawn[WARMUP:]
        term_queries = [analyzer.terms(q) for q in queries]
        warm_terms = [analyzer.terms(q) for q in warm]
        result["queries"] = {"count": len(queries), "seed": SEED, "index": index, "documents": len(docs),
                             "examples": queries[:5]}

        # This driver holds the whole corpus (for the baselines): without a freeze, the
        # cyclic GC's full passes over those millions of objects land in the timings of
        # the in-cluster API (which runs in this process) and of the HTTP client.
        gc.collect()
        gc.freeze()
        # First as a search box sees the index right after a large bulk: its persistence,
        # MongoDB's work, the shards' snapshots and compactions still running beside it.
        log(f"search: {len(queries)} queries over HTTP, sequential, right after the bulk ...")
        result["search"]["http_after_bulk"], _ = sequential_http(service_url, index, queries, warm, sampler)
        log(f"  {result['search']['http_after_bulk']}")
        # Then settled, as it is most of the time (every figure below is taken settled).
        result["search"]["settle_s"] = round(settle(index, timeout_s=settle_timeout_s), 1)
        log(f"search: {len(queries)} queries over HTTP, sequential, settled ({result['search']['settle_s']} s) ...")
        result["search"]["http"], http_ids = sequential_http(service_url, index, queries, warm, sampler)
        log(f"  {result['search']['http']}")
        log("search: the same queries through the in-cluster Python API (SearchService) ...")
        result["search"]["api"] = latency_summary(api_latency(settings, index, queries, warm))
        log(f"  {result['search']['api']}")
        log("search: filtered, sorted and faceted queries over HTTP ...")
        result["search"]["structured"] = structured_latency(service_url, index, queries[:300], warm)
        log(f"  {result['search']['structured']}")
        log(f"search: {throughput_threads} concurrent HTTP clients ...")
        _cpu_start(sampler)
        result["search"]["http_concurrent"] = http_throughput(service_url, index, queries, throughput_threads)
        result["search"]["http_concurrent"]["cpu"] = cpu_per_query(sampler, len(queries) + throughput_threads)
        log(f"  {result['search']['http_concurrent']['queries_per_s']} queries/s, "
            f"CPU {result['search']['http_concurrent']['cpu']}")
        # Updates: the same ids again with a changed title, into the searched index (after
        # the searches, so they do not share the cores with it).
        log(f"update: the {len(docs)} documents' ids again, changed, in random order ...")
        changed = [{**d, "title": f"{d.get('title', '')} (updated)"} for d in docs]
        # Random order, the usual case: each update batch then holds documents of nearly every
        # earlier batch. The ids in their original order would be the best case.
        random.Random(SEED).shuffle(changed)
        u = measure_bulk(client, index, changed, sampler, request_docs=request_docs, create=False,
                         expect_documents=len({d["id"] for d in docs}))
        if u["status"] != "completed" or u["searchable_s"] is None:
            raise RuntimeError(f"update round into {index!r} ended {u['status']}: {u}")
        result["update"] = u
        log(f"  searchable in {u['searchable_s']} s ({u['searchable_docs_per_s']} docs/s), "
            f"completed in {u['completed_s']} s")

        log(f"baselines: analysing {len(docs)} documents with raysearch's Analyzer ...")
        rows, analyze_s = analyze_docs(docs)
        result["baselines"]["analysis"] = {"documents": len(docs), "distinct_ids": len(rows),
                                           "seconds": round(analyze_s, 3),
                                           "docs_per_s": round(len(docs) / analyze_s, 1)}
        workdir = tempfile.mkdtemp(prefix="raysearch-bench-baselines-")
        try:
            for name, fn in (("tantivy", bench_tantivy), ("sqlite_fts5", bench_sqlite)):
                log(f"baselines: {name} ...")
                b = fn(rows, term_queries, warm_terms, workdir)
                ids = b.pop("_ids")
                b["documents"] = len(docs)
                b["engine_docs_per_s"] = round(len(docs) / b["build_s"], 1)
                b["with_analysis_s"] = round(b["build_s"] + analyze_s, 3)
                b["with_analysis_docs_per_s"] = round(len(docs) / b["with_analysis_s"], 1)
                b["top10_overlap_with_raysearch"] = overlap_at_10(http_ids, ids)
                result["baselines"][name] = b
                log(f"  build {b['with_analysis_docs_per_s']} docs/s incl. analysis; "
                    f"p50 {b['latency']['p50_ms']} ms, p99 {b['latency']['p99_ms']} ms")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        result["ratios"] = ratios(result)
        return result
    finally:
        if cleanup:
            for index in indexes:
                try:
                    client.delete_index(index)
                except Exception as exc:  # best effort
                    log(f"could not delete {index!r}: {exc}")
        client.close()


def ratios(result: dict) -> dict:
    """raysearch relative to each baseline: docs/s as raysearch/engine (>1 = raysearch
    faster), latency as raysearch/engine (>1 = raysearch slower)."""
    largest = result["bulk"][-1]
    out = {}
    for name in ("tantivy", "sqlite_fts5"):
        b = result["baselines"][name]
        out[name] = {
            "build_docs_per_s": round(largest["searchable_docs_per_s"] / b["with_analysis_docs_per_s"], 5),
            "http_p50": round(result["search"]["http"]["p50_ms"] / b["latency"]["p50_ms"], 1),
            "http_p99": round(result["search"]["http"]["p99_ms"] / b["latency"]["p99_ms"], 1),
            "api_p50": round(result["search"]["api"]["p50_ms"] / b["latency"]["p50_ms"], 1),
            "api_p99": round(result["search"]["api"]["p99_ms"] / b["latency"]["p99_ms"], 1),
        }
    return out


# --------------------------------------------------------------- report


def _fmt(x, digits: int = 1) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}"


def markdown(report: dict) -> str:
    r = report["results"]
    env = report["environment"]
    lines = [f"# raysearch benchmark — {report['started_at']}", "",
             f"`{report['command']}`  ", f"commit {env['commit']}{' (dirty tree)' if env['dirty'] else ''}, "
             f"{env['cpus']} CPUs, load avg at start {env['loadavg_start']}, at end {report.get('loadavg_end')}, Python {env['python']}, "
             f"workers {report['settings']['workers']}, shards {report['settings']['shards']}, "
             f"batch {report['settings']['batch_size']}", "",
             "## Bulk indexing (Python client over HTTP, NDJSON requests of "
             f"{r['bulk'][0]['request_docs']:,} docs, fresh index each)", "",
             "| docs | requests | batches | all 202s s | searchable s | searchable docs/s | completed s "
             "| completed docs/s | peak RSS MB | service PSS MB at end | CPU s (all processes) | max load avg |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in r["bulk"]:
        mem = m.get("memory", {})
        lines.append(f"| {m['documents']:,} | {m['requests']} | {m['batches']} | {_fmt(m['ack_s'])} | "
                     f"{_fmt(m['searchable_s'])} | {_fmt(m['searchable_docs_per_s'])} | {_fmt(m['completed_s'])} | "
                     f"{_fmt(m['completed_docs_per_s'])} | {_fmt(mem.get('peak_rss_mb'))} | "
                     f"{_fmt(mem.get('pss_mb_at_end'))} | {_fmt(mem.get('cpu_s_total'))} | "
                     f"{_fmt(mem.get('max_loadavg_1m'))} |")
    big = r["bulk"][-1].get("memory")
    if big:
        lines += ["", f"Largest bulk ({r['bulk'][-1]['documents']:,} docs), by process role — CPU seconds: "
                  + ", ".join(f"{k} {v:,.1f}" for k, v in list(big["cpu_s_by_role"].items())[:8])
                  + f"; RSS MB at the peak ({big['peak_processes']} processes): "
                  + ", ".join(f"{k} {v:,.0f}" for k, v in list(big["peak_rss_mb_by_role"].items())[:8])
                  + (f"; the service's PSS leaves out the driver (this benchmark: client, corpus), "
                     f"{big['driver_pss_mb_at_end']:,.0f} MB at the end" if "driver_pss_mb_at_end" in big else "")]
    u, first = r.get("update"), r["bulk"][-1]
    if u:
        ratio = u["searchable_docs_per_s"] / first["searchable_docs_per_s"] if first["searchable_docs_per_s"] else 0
        lines += ["", f"Update round (the same {u['documents']:,} ids again in random order, each title changed, into the "
                  f"searched index): searchable in {_fmt(u['searchable_s'])} s ({_fmt(u['searchable_docs_per_s'])} "
                  f"docs/s, {ratio:.2f}× the insert rate above), completed in {_fmt(u['completed_s'])} s "
                  f"({_fmt(u['completed_docs_per_s'])} docs/s); CPU {_fmt(u.get('memory', {}).get('cpu_s_total'))} s."]
    q = r["queries"]
    s = r["search"]
    lines += ["", f"## Search: {q['count']:,} queries of 1–3 words (seed {q['seed']}), top 10, "
              f"on {q['documents']:,} docs", "",
              "| engine / path | p50 ms | p99 ms | mean ms | queries/s |", "|---|---:|---:|---:|---:|",
              f"| raysearch, HTTP, sequential (settled) | {_fmt(s['http']['p50_ms'], 2)} | "
              f"{_fmt(s['http']['p99_ms'], 2)} | {_fmt(s['http']['mean_ms'], 2)} | {_fmt(1000 / s['http']['mean_ms'])} |",
              f"| raysearch, in-cluster Python API (SearchService) | {_fmt(s['api']['p50_ms'], 2)} | "
              f"{_fmt(s['api']['p99_ms'], 2)} | {_fmt(s['api']['mean_ms'], 2)} | {_fmt(1000 / s['api']['mean_ms'])} |"]
    busy = s.get("http_after_bulk")
    if busy:
        lines.append(f"| raysearch, HTTP, sequential, right after the bulk (background work running) | "
                     f"{_fmt(busy['p50_ms'], 2)} | {_fmt(busy['p99_ms'], 2)} | {_fmt(busy['mean_ms'], 2)} | "
                     f"{_fmt(1000 / busy['mean_ms'])} |")
    c = s["http_concurrent"]
    lines.append(f"| raysearch, HTTP, {c['threads']} concurrent clients | {_fmt(c['latency']['p50_ms'], 2)} | "
                 f"{_fmt(c['latency']['p99_ms'], 2)} | {_fmt(c['latency']['mean_ms'], 2)} | "
                 f"**{_fmt(c['queries_per_s'])}** |")
    b = r["baselines"]
    cpu_lines = []
    for label, part in (("sequential", s["http"]), ("right after the bulk", busy or {}),
                        (f"{c['threads']} clients", c)):
        cpu = part.get("cpu")
        if cpu:
            top = sorted(cpu["ms_per_query_by_role"].items(), key=lambda kv: -kv[1])[:6]
            cpu_lines.append(f"{label} {cpu['ms_per_query']:.2f} ms ("
                             + ", ".join(f"{role} {ms:.2f}" for role, ms in top) + ")")
    for name in ("tantivy", "sqlite_fts5"):
        lat = b[name]["latency"]
        lines.append(f"| {b[name]['engine']}, in process | {_fmt(lat['p50_ms'], 3)} | {_fmt(lat['p99_ms'], 3)} | "
                     f"{_fmt(lat['mean_ms'], 3)} | {_fmt(1000 / lat['mean_ms'])} |")
    if cpu_lines:
        lines += ["", "CPU per query over HTTP, every service process (the driver, where the clients run, "
                  "left out): " + "; ".join(cpu_lines) + "."]
    st = s.get("structured")
    if st:
        lines += ["", "Structured search over HTTP, sequential (same queries, first 300; typed Debian fields):", "",
                  "| kind | p50 ms | p99 ms | ÷ unfiltered p50 |", "|---|---:|---:|---:|"]
        base = st["unfiltered"]["p50_ms"]
        for name, lat in st.items():
            lines.append(f"| {name.replace('_', ' ')} | {_fmt(lat['p50_ms'], 2)} | {_fmt(lat['p99_ms'], 2)} | "
                         f"{lat['p50_ms'] / base:.2f}× |")
        lines.append("")
    a = b["analysis"]
    lines += ["", f"## Side by side on the same {a['documents']:,} docs ({a['distinct_ids']:,} distinct ids), "
              "same Analyzer terms", "",
              "| engine | build s | build docs/s | index MB | query p50 ms | query p99 ms | top-10 overlap with raysearch |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    big_bulk = r["bulk"][-1]
    lines.append(f"| raysearch (to searchable, via HTTP) | {_fmt(big_bulk['searchable_s'])} | "
                 f"{_fmt(big_bulk['searchable_docs_per_s'])} | — | {_fmt(s['http']['p50_ms'], 2)} (HTTP) / "
                 f"{_fmt(s['api']['p50_ms'], 2)} (API) | {_fmt(s['http']['p99_ms'], 2)} / {_fmt(s['api']['p99_ms'], 2)} | 1.000 |")
    for name in ("tantivy", "sqlite_fts5"):
        e = b[name]
        lines.append(f"| {e['engine']}, 1 thread (Analyzer {_fmt(a['seconds'])} s + engine {_fmt(e['build_s'])} s) | "
                     f"{_fmt(e['with_analysis_s'])} | {_fmt(e['with_analysis_docs_per_s'])} "
                     f"(engine alone {_fmt(e['engine_docs_per_s'])}) | {_fmt(e['index_mb'])} | "
                     f"{_fmt(e['latency']['p50_ms'], 3)} | {_fmt(e['latency']['p99_ms'], 3)} | "
                     f"{e['top10_overlap_with_raysearch']:.3f} |")
    lines += ["", "raysearch ÷ engine (build docs/s: < 1 means raysearch is slower; latency: > 1 means raysearch is slower):",
              "", "| vs | build docs/s | HTTP p50 | HTTP p99 | API p50 | API p99 |", "|---|---:|---:|---:|---:|---:|"]
    for name, x in r["ratios"].items():
        lines.append(f"| {b[name]['engine']} | {x['build_docs_per_s']:.4f} (1/{1 / x['build_docs_per_s']:,.0f}) | "
                     f"{x['http_p50']:,.1f}× | {x['http_p99']:,.1f}× | {x['api_p50']:,.1f}× | {x['api_p99']:,.1f}× |")
    lines += ["", f"Notes: docs/s counts input records (they repeat {a['documents'] - a['distinct_ids']:,} ids; "
              "each engine ends with the distinct ids). RSS sums every process of the service (driver, raylet, gcs_server, Ray workers and actors, "
              "the MongoDB server), so pages shared between them count more than once; PSS divides them. "
              "Baselines run in the driver process, one thread, after the raysearch measurements; their "
              "build time includes the Python Analyzer (shown separately). SQLite ranks with its own bm25(); "
              "tantivy's BM25 equals raysearch's up to a constant factor, so its overlap shows agreement "
              "modulo ties.", ""]
    return "\n".join(lines)


def environment() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception:
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD") or "?",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "dirty_files": git("diff", "--name-only").splitlines(),
            "cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(), "host": socket.gethostname()}


# ------------------------------------------------------------------ CLI


def parse_sizes(text: str) -> list[int | None]:
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in ("all", "full"):
            out.append(None)
        elif part:
            out.append(int(part.replace("_", "")))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", default=None,
                   help="comma-separated bulk sizes, 'all' = the whole corpus (default 16000,all; smoke 500,1500)")
    p.add_argument("--queries", type=int, default=None, help="search queries (default 1000; smoke 50)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="directory for benchmark.json and benchmark.md")
    p.add_argument("--smoke", action="store_true", help="~1,500 docs and 50 queries; measures everything")
    p.add_argument("--workers", type=int, default=None, help="IndexWorker pool size (default: the service's)")
    p.add_argument("--shards", type=int, default=None, help="shards per index (default: the service's)")
    p.add_argument("--request-docs", type=int, default=5000, help="documents per bulk HTTP request")
    p.add_argument("--threads", type=int, default=8, help="concurrent HTTP clients for throughput")
    p.add_argument("--keep-data", action="store_true", help="keep the temporary data directory")
    p.add_argument("--corpus", default=None, metavar="PATH",
                   help=f"documents, gzipped JSON lines (default {DEFAULT_CORPUS.relative_to(REPO)}, built when missing)")
    p.add_argument("--scale", type=int, default=None, metavar="COPIES",
                   help="instead: the scale benchmark over COPIES copies of the corpus under new ids "
                        "(16: about 1M docs; benchmarks/scale.py)")
    args = p.parse_args(argv)
    if args.scale:
        import scale

        extra = ["--corpus", args.corpus] if args.corpus else []
        return scale.main(["--copies", str(args.scale), "--out", args.out, *extra])

    sizes = parse_sizes(args.docs or ("500,1500" if args.smoke else "16000,all"))
    n_queries = args.queries or (50 if args.smoke else 1000)
    try:
        corpus_file = corpus_path(args.corpus)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"no corpus: {exc}", file=sys.stderr)
        return 2

    from raysearch.config import Settings
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    limit = None if None in sizes else max(sizes)
    corpus = load_docs(limit, corpus_file)
    sizes_n = [len(corpus) if n is None else min(n, len(corpus)) for n in sizes]
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    env = environment()
    data_dir = tempfile.mkdtemp(prefix="raysearch-bench-")
    workers = args.workers or (SMOKE_WORKERS if args.smoke else None)
    overrides = {k: v for k, v in (("workers", workers), ("shards", args.shards)) if v is not None}
    settings = Settings.from_env(data_dir=data_dir, port=free_port(), **overrides)
    settings.mongo_uri = None  # LocalService starts its own MongoDB server under data_dir
    service = LocalService(settings, dashboard=False)
    sampler = ProcessSampler()
    print(f"starting a local service on port {settings.port} (data in {data_dir}) ...", flush=True)
    t = time.perf_counter()
    try:
        service.start()
        startup_s = time.perf_counter() - t
        print(f"  ready in {startup_s:.1f} s", flush=True)
        sampler.reset()
        idle = sampler.summary()
        sampler.start()
        results = run_benchmarks(service.url, settings=service.settings, sizes=sizes_n, n_queries=n_queries,
                                 corpus=corpus, sampler=sampler, request_docs=args.request_docs,
                                 throughput_threads=args.threads, log=lambda m: print(m, flush=True),
                                 settle_timeout_s=60 if args.smoke else 600)
        results["startup"] = {"seconds": round(startup_s, 2), "idle_rss_mb": idle["peak_rss_mb"],
                              "idle_processes": idle["peak_processes"],
                              "idle_rss_mb_by_role": idle["peak_rss_mb_by_role"]}
    finally:
        sampler.stop()
        t = time.perf_counter()
        try:
            service.stop()
        finally:
            print(f"service stopped in {time.perf_counter() - t:.1f} s", flush=True)
            if not args.keep_data:
                shutil.rmtree(data_dir, ignore_errors=True)

    s = service.settings
    report = {
        "started_at": started_at,
        "command": " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "smoke": args.smoke,
        "environment": env,
        "settings": {"workers": s.workers, "shards": s.shards, "batch_size": s.batch_size,
                     "persist_interval_s": s.persist_interval_s},
        "corpus": str(corpus_file.resolve().relative_to(REPO) if corpus_file.resolve().is_relative_to(REPO)
                      else corpus_file),
        "results": results,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    (out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "benchmark.md").write_text(table)
    print()
    print(table)
    print(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
