"""A long soak: mixed traffic from 8 clients for a set time, then the final state checked
exactly against an oracle (issue 24).

    python benchmarks/soak.py --minutes 10 --out benchmarks/reference   # 24 h: --minutes 1440
    python benchmarks/soak.py --minutes 10 --constant-size 40000 --out DIR  # memory at a constant size

Starts a fresh local service (its own Ray, MongoDB server and data directory, as run.py
does), declares typed fields, and runs `--clients` threads, each doing at random: bulk
inserts of new documents, bulk updates of its own existing ids (random ones), single
PUTs, single DELETEs, and searches with a filter and facets (queries drawn from the
corpus). Each client writes only ids of its own, one request at a time, and waits for a
bulk to be indexed before its next write (a 202 accepts, it does not order), so the last
write it saw acknowledged is the version that must be there: that is the oracle. At the end it waits for every operation, then pages through every document
of the index and compares ids and titles with the oracle, exactly.

Prints and writes (soak.json, soak.md): requests and 5xx per kind (5xx must be 0), p50
and p99 per kind per tenth of the run, and the service's PSS (every process it started)
sampled every 5 s, with its growth from the second tenth to the last (<= 10 % after
warm-up). Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import httpx  # noqa: E402

from run import percentile, process_role, process_tree, pss_total  # noqa: E402

INDEX = "soak"
CORPUS = ROOT / "tests" / "data" / "corpora" / "debian-sample" / "docs.jsonl.gz"
FIELDS = {"section": {"type": "keyword"}, "priority": {"type": "keyword"},
          "installed_size": {"type": "integer"}, "essential": {"type": "boolean"}}
KINDS = ("bulk_insert", "bulk_update", "put", "delete", "search")
WEIGHTS = (2, 2, 3, 1, 12)
TERMINAL = ("completed", "partially_completed", "failed")


def load_corpus() -> list[dict]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


class Client(threading.Thread):
    """One client: its own ids (prefix c<k>-), its oracle, its latencies."""

    def __init__(self, k: int, url: str, corpus: list[dict], words: list[str], deadline: float, start: float,
                 quota: int | None = None):
        super().__init__(name=f"soak-client-{k}", daemon=True)
        self.k, self.url, self.corpus, self.words = k, url, corpus, words
        self.quota = quota  # --constant-size: this client's share of the documents, kept about constant
        self.deadline, self.start_time = deadline, start
        self.rng = random.Random(1000 + k)
        self.oracle: dict[str, str] = {}  # id -> title of its last acknowledged version
        self.next_id = 0
        self.ops: list[str] = []
        self.samples: list[tuple[str, float, float, int]] = []  # (kind, at seconds, latency, status)
        self.errors: list[str] = []

    def _doc(self, doc_id: str, version: int) -> dict:
        src = self.rng.choice(self.corpus)
        doc = {k: v for k, v in src.items() if k != "id"}
        doc["id"] = doc_id
        doc["title"] = f"{src['title']} v{version}-{self.rng.randrange(10**9)}"
        return doc

    def _record(self, kind: str, t0: float, r: httpx.Response) -> None:
        self.samples.append((kind, t0 - self.start_time, time.perf_counter() - t0, r.status_code))
        if r.status_code >= 500:
            self.errors.append(f"{kind} {r.status_code}: {r.text[:300]}")

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=300) as http:
            while time.time() < self.deadline:
                kind = self.rng.choices(KINDS, WEIGHTS)[0]
                if self.quota is not None:  # fill up to the quota first, then replace what is deleted
                    if len(self.oracle) < self.quota * 0.9:
                        kind = "bulk_insert"
                    elif kind == "bulk_insert" and len(self.oracle) >= self.quota:
                        kind = "bulk_update"
                try:
                    getattr(self, kind)(http)
                except httpx.HTTPError as exc:  # the service must answer: a transport error is a failure too
                    self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")

    def bulk_insert(self, http) -> None:
        docs = []
        for _ in range(200):
            docs.append(self._doc(f"c{self.k}-{self.next_id}", 1))
            self.next_id += 1
        self._bulk(http, "bulk_insert", docs)

    def bulk_update(self, http) -> None:
        if not self.oracle:
            return self.bulk_insert(http)
        ids = self.rng.sample(sorted(self.oracle), min(100, len(self.oracle)))
        self._bulk(http, "bulk_update", [self._doc(i, 2) for i in ids])

    def _bulk(self, http, kind: str, docs: list[dict]) -> None:
        t0 = time.perf_counter()
        r = http.post(f"/bulk-indexing/{INDEX}", json=docs)
        self._record(kind, t0, r)
        if r.status_code == 202:
            op = r.json()["operation_id"]
            self.ops.append(op)
            self.oracle.update({d["id"]: d["title"] for d in docs})
            # A 202 accepts; it does not order: batches of different operations are applied
            # independently, so a client that writes the same ids again waits until this one
            # is indexed (as the Ray Data sink's wait="searchable" does).
            while http.get(f"/bulk-operations/{op}").json()["status"] == "indexing" and time.time() < self.deadline + 600:
                time.sleep(0.1)
        elif r.status_code != 429:  # backpressure is an answer, not a failure
            self.errors.append(f"{kind} {r.status_code}: {r.text[:300]}")

    def put(self, http) -> None:
        existing = self.oracle and (self.rng.random() < 0.5 or (self.quota is not None and len(self.oracle) >= self.quota))
        doc_id = self.rng.choice(sorted(self.oracle)) if existing else f"c{self.k}-{self.next_id}"
        if not existing:
            self.next_id += 1
        doc = self._doc(doc_id, 3)
        t0 = time.perf_counter()
        r = http.put(f"/indexes/{INDEX}/documents/{doc_id}", json=doc)
        self._record("put", t0, r)
        if r.status_code == 200:
            self.oracle[doc_id] = doc["title"]
        elif r.status_code != 429:
            self.errors.append(f"put {r.status_code}: {r.text[:300]}")

    def delete(self, http) -> None:
        if not self.oracle:
            return
        doc_id = self.rng.choice(sorted(self.oracle))
        t0 = time.perf_counter()
        r = http.delete(f"/indexes/{INDEX}/documents/{doc_id}")
        self._record("delete", t0, r)
        if r.status_code == 200:
            del self.oracle[doc_id]
        elif r.status_code != 404:  # 404: its delete raced an earlier write still indexing (retried later)
            self.errors.append(f"delete {r.status_code}: {r.text[:300]}")

    def search(self, http) -> None:
        q = " ".join(self.rng.sample(self.words, self.rng.randint(1, 3)))
        body = {"q": q, "size": 10, "filter": {"range": {"installed_size": {"lt": self.rng.randint(100, 50_000)}}},
                "facets": {"sections": {"terms": {"field": "section", "size": 5}}}}
        t0 = time.perf_counter()
        r = http.post(f"/indexes/{INDEX}/search", json=body)
        self._record("search", t0, r)
        if r.status_code != 200:
            self.errors.append(f"search {r.status_code}: {r.text[:300]}")


class PssSampler(threading.Thread):
    def __init__(self, start: float, every_s: float = 5.0):
        super().__init__(name="pss", daemon=True)
        self.start_time, self.every_s = start, every_s
        self.samples: list[tuple[float, float]] = []  # (seconds, MB)
        self.by_role: list[tuple[float, dict[str, float]]] = []  # (seconds, role -> MB): where it grows
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            pids = [p for p in process_tree(me) if p != me]  # the service's processes, not the clients'
            roles: dict[str, float] = {}
            for pid in pids:
                role = process_role(pid, me)
                roles[role] = roles.get(role, 0.0) + pss_total([pid]) / 2**20
            at = time.perf_counter() - self.start_time
            self.samples.append((at, sum(roles.values())))
            self.by_role.append((at, roles))
            self.stop.wait(self.every_s)


def all_documents(http) -> dict[str, str]:
    """id -> title of every document in the index, paged with search_after."""
    out, after = {}, None
    while True:
        body = {"size": 1000, "sort": [{"section": "asc"}]}
        if after is not None:
            body["search_after"] = after
        page = http.post(f"/indexes/{INDEX}/search", json=body).json()
        for hit in page["hits"]:
            out[hit["id"]] = hit["document"]["title"]
        if len(page["hits"]) < 1000:
            return out
        after = page["hits"][-1]["sort"]


def tenths(samples, seconds: float):
    """Per tenth of the run: {kind: (count, p50 ms, p99 ms)}."""
    rows = []
    for t in range(10):
        lo, hi = seconds * t / 10, seconds * (t + 1) / 10
        by_kind = defaultdict(list)
        for kind, at, latency, _ in samples:
            if lo <= at < hi:
                by_kind[kind].append(latency)
        rows.append({k: (len(v), percentile(v, 50) * 1000, percentile(v, 99) * 1000) for k, v in by_kind.items()})
    return rows


def _role_growth(by_role, seconds: float) -> dict[str, list[float]]:
    """role -> [mean PSS MB in the second tenth, in the last tenth]: which processes grow."""
    def mean(lo, hi):
        rows = [roles for at, roles in by_role if lo <= at < hi]
        names = {name for roles in rows for name in roles}
        return {name: sum(r.get(name, 0.0) for r in rows) / max(len(rows), 1) for name in names}
    second, last = mean(seconds * 0.1, seconds * 0.2), mean(seconds * 0.9, float("inf"))
    return {name: [round(second.get(name, 0.0), 1), round(last.get(name, 0.0), 1)]
            for name in sorted(set(second) | set(last), key=lambda n: -(last.get(n, 0) - second.get(n, 0)))}


def markdown(report: dict) -> str:
    r = report
    size = f", constant size {r['constant_size']:,}" if r.get("constant_size") else ""
    lines = [f"# Soak, {r['minutes']} min, {r['clients']} clients{size} ({r['started_at']}, commit {r['commit']})", "",
             f"Command: `{r['command']}`", "",
             f"- requests: {r['requests']:,}; 5xx: **{r['server_errors']}**; other client errors: {len(r['errors'])}",
             f"- final state: {r['documents']:,} documents; oracle: {r['oracle_documents']:,}; "
             f"missing {r['missing']}, unexpected {r['unexpected']}, wrong version {r['wrong_version']} -> "
             f"**{'exact' if r['exact'] else 'MISMATCH'}**",
             f"- operations: {r['operations']:,}, all completed: {r['operations_completed']}",
             f"- service PSS: second tenth {r['pss_second_tenth_mb']:.0f} MB, last tenth {r['pss_last_tenth_mb']:.0f} MB "
             f"(growth {r['pss_growth_pct']:+.1f} %, limit +10 %)", "",
             "p50 / p99 latency (ms) per tenth of the run:", "",
             "| tenth | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 1) + "|"]
    for t, row in enumerate(r["tenths"]):
        cells = [f"{row[k][1]:.0f} / {row[k][2]:.0f} ({row[k][0]})" if k in row else "-" for k in KINDS]
        lines.append(f"| {t + 1} | " + " | ".join(cells) + " |")
    lines += ["", "PSS (MB) every 5 s: " + ", ".join(f"{mb:.0f}" for _, mb in r["pss"][::6]), ""]
    if r.get("pss_by_role"):
        lines += ["PSS by process role, second tenth -> last tenth (MB), largest growth first: "
                  + ", ".join(f"{name} {a:.0f} -> {b:.0f}" for name, (a, b) in list(r["pss_by_role"].items())[:10]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--out", default=None, help="directory for soak.json and soak.md")
    ap.add_argument("--constant-size", type=int, default=None, metavar="DOCS",
                    help="fill the index to about DOCS documents (in the first tenth), then keep it there: "
                         "inserts only replace deletes, the rest updates; PSS growth then measures leaks, "
                         "not a growing index")
    args = ap.parse_args(argv)

    from raysearch.config import Settings
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    corpus = load_corpus()
    words = sorted({w for d in corpus[:2000] for w in d["title"].lower().split() if w.isalpha() and len(w) > 3})
    data_dir = tempfile.mkdtemp(prefix="raysearch-soak-")
    settings = Settings.from_env(data_dir=data_dir, port=free_port())
    settings.mongo_uri = None
    service = LocalService(settings, dashboard=False)
    print(f"starting a local service (data in {data_dir}) ...", flush=True)
    service.start()
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    try:
        with httpx.Client(base_url=service.url, timeout=300) as http:
            assert http.put(f"/indexes/{INDEX}", json={"fields": FIELDS}).status_code == 201
            start = time.perf_counter()
            deadline = time.time() + args.minutes * 60
            sampler = PssSampler(start)
            sampler.start()
            quota = args.constant_size // args.clients if args.constant_size else None
            clients = [Client(k, service.url, corpus, words, deadline, start, quota) for k in range(args.clients)]
            for c in clients:
                c.start()
            while any(c.is_alive() for c in clients):
                time.sleep(10)
                done = sum(len(c.samples) for c in clients)
                print(f"  {time.perf_counter() - start:6.0f} s: {done:,} requests, "
                      f"{sum(len(c.errors) for c in clients)} errors", flush=True)
            seconds = time.perf_counter() - start
            ops = [op for c in clients for op in c.ops]
            print(f"waiting for {len(ops):,} operations ...", flush=True)
            statuses = {}
            for op in ops:
                while (view := http.get(f"/bulk-operations/{op}").json())["status"] not in TERMINAL:
                    time.sleep(0.5)
                statuses[op] = view["status"]
            sampler.stop.set()
            oracle = {i: t for c in clients for i, t in c.oracle.items()}
            found = all_documents(http)
            missing = sorted(set(oracle) - set(found))
            unexpected = sorted(set(found) - set(oracle))
            wrong = sorted(i for i in set(oracle) & set(found) if oracle[i] != found[i])
            documents = http.get(f"/indexes/{INDEX}").json()["documents"]
    finally:
        service.stop()
    samples = [s for c in clients for s in c.samples]
    errors = [e for c in clients for e in c.errors]
    pss = sampler.samples
    second = [mb for t, mb in pss if seconds * 0.1 <= t < seconds * 0.2] or [0.0]
    last = [mb for t, mb in pss if t >= seconds * 0.9] or [0.0]
    report = {
        "minutes": args.minutes, "clients": args.clients, "started_at": started_at, "constant_size": args.constant_size,
        "command": "python benchmarks/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip(),
        "requests": len(samples), "server_errors": sum(1 for s in samples if s[3] >= 500),
        "by_kind": {k: sum(1 for s in samples if s[0] == k) for k in KINDS}, "errors": errors[:50],
        "documents": documents, "oracle_documents": len(oracle), "missing": len(missing),
        "unexpected": len(unexpected), "wrong_version": len(wrong),
        "exact": not missing and not unexpected and not wrong and documents == len(oracle),
        "examples": {"missing": missing[:5], "unexpected": unexpected[:5], "wrong": wrong[:5]},
        "operations": len(ops), "operations_completed": all(s == "completed" for s in statuses.values()),
        "tenths": tenths(samples, seconds), "pss": pss,
        "pss_second_tenth_mb": sum(second) / len(second), "pss_last_tenth_mb": sum(last) / len(last),
    }
    report["pss_growth_pct"] = 100 * (report["pss_last_tenth_mb"] / max(report["pss_second_tenth_mb"], 1e-9) - 1)
    report["pss_by_role"] = _role_growth(sampler.by_role, seconds)
    text = markdown(report)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "soak.json").write_text(json.dumps(report, indent=1))
        (out / "soak.md").write_text(text)
    ok = (report["server_errors"] == 0 and not errors and report["exact"] and report["operations_completed"]
          and report["pss_growth_pct"] <= 10)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
