"""Issue 24's defects on the real service (Ray, Serve, RocksDB, MongoDB); each test
failed before its fix. The defects plain code can show: tests/unit/test_reliability_defects.py.

1. the result window holds with search_after;
3. reads racing a restore get a clean 503 or a whole answer, never a 500 or a partial total;
4. readiness answers while the persistence actor is busy with a long call;
6. deletes racing bulks on one index: no 5xx, and the index takes writes afterwards;
7. no MongoDB call blocks the ingress's event loop;
8. readiness requests given up by their clients during a slow start wedge nothing.
(2, the webhook of a retried operation: test_injected_faults.py.)
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import ray

from raysearch.actors import registry
from raysearch.config import NAMESPACE
from tests.conftest import debian_docs, wait_operation


def _bulk(http, index, docs):
    r = http.post(f"/bulk-indexing/{index}", json=docs)
    assert r.status_code == 202, r.text
    op = wait_operation(http, r.json()["operation_id"])
    assert op["status"] == "completed", op
    return op


# ------------------------------------------------------------------ 1
def test_the_result_window_holds_with_search_after(http):
    index = "window"
    _bulk(http, index, [{"id": f"w{i}", "title": "window"} for i in range(5)])
    limit = http.get("/indexes/window/search", params={"q": "window", "size": 1, "sort": '["_score"]'}).json()
    after = limit["hits"][0]["sort"]
    for params in ({"from": 1_000_000_000}, {"from": 99_995, "size": 10}):
        r = http.post(f"/indexes/{index}/search", json={"q": "window", "search_after": after, **params})
        assert r.status_code == 400, r.text
        assert "from + size" in r.json()["error"]["reason"]
    r = http.post(f"/indexes/{index}/search", json={"q": "window", "search_after": after, "size": 10})
    assert r.status_code == 200 and r.json()["total"] == 5


# ------------------------------------------------------------------ 3
def test_reads_racing_a_restore_get_a_whole_answer_or_a_clean_503(http, service):
    index = "rebuild-reads"
    docs = debian_docs(0, 3000)
    _bulk(http, index, docs)
    shard_pids = [ray.get(ray.get_actor(registry.shard_name(index, n), namespace=NAMESPACE).pid.remote())
                  for n in range(4)]
    answers: list[tuple[int, dict]] = []
    stop = threading.Event()

    def reader(n: int):
        with httpx.Client(base_url=service.url, timeout=120) as client:
            while not stop.is_set():
                if n % 2:
                    r = client.get(f"/indexes/{index}/search", params={"size": 20})  # match-all: the total
                else:
                    r = client.get(f"/indexes/{index}/documents/{docs[n * 7]['id']}")
                answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for _ in range(2):
            r = http.post(f"/indexes/{index}/restore")
            assert r.status_code == 200, r.text
    finally:
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(60)
    statuses = {code for code, _ in answers}
    assert statuses <= {200, 503}, [a for a in answers if a[0] not in (200, 503)][:3]
    for code, body in answers:
        if code == 503:
            assert body["error"]["type"] == "shard_unavailable" and "rebuilt" in body["error"]["reason"], body
        elif "total" in body:
            assert body["total"] == len(docs), "a search answered from a half-restored shard"
    assert sum(code == 200 for code, _ in answers) > 10
    assert [ray.get(ray.get_actor(registry.shard_name(index, n), namespace=NAMESPACE).pid.remote())
            for n in range(4)] == shard_pids  # no shard process died
    assert http.get(f"/indexes/{index}/search").json()["total"] == len(docs)


# ------------------------------------------------------------------ 4
def test_readiness_answers_while_persistence_runs_a_long_call(http):
    persistence = ray.get_actor(registry.PERSISTENCE, namespace=NAMESPACE)
    busy = persistence.__ray_call__.remote(lambda self: time.sleep(12) or True)  # as a long flush (verify, restore)
    try:
        time.sleep(0.5)
        started = time.monotonic()
        assert ray.get(persistence.ping.remote(), timeout=5)
        r = http.get("/readyz", timeout=8)
        assert r.status_code == 200, r.text
        assert "persistence" in http.get("/stats", timeout=8).json()
        assert time.monotonic() - started < 8
    finally:
        ray.get(busy, timeout=60)


# ------------------------------------------------------------------ 6
def test_deletes_racing_bulks_lose_nothing_and_the_index_takes_writes_after(http, service):
    index = "delete-race"
    statuses: list[tuple[str, int, str]] = []

    def client_work(n: int):
        with httpx.Client(base_url=service.url, timeout=300) as client:
            for i in range(10):
                if n < 2:  # 2 clients x 10 deletes
                    r = client.delete(f"/indexes/{index}")
                    statuses.append(("delete", r.status_code, r.text[:200]))
                else:  # 4 clients x 10 bulks of 50
                    docs = [{"id": f"c{n}-{i}-{j}", "title": f"race {n} {i}"} for j in range(50)]
                    r = client.post(f"/bulk-indexing/{index}", json=docs)
                    statuses.append(("bulk", r.status_code, r.text[:200]))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(client_work, range(6)))
    server_errors = [s for s in statuses if s[1] >= 500]
    assert not server_errors, server_errors[:5]
    assert {code for kind, code, _ in statuses if kind == "delete"} <= {200, 404, 409}
    assert {code for kind, code, _ in statuses if kind == "bulk"} <= {202, 409}
    for kind, code, text in statuses:
        if code == 409:
            assert "being deleted" in text
    # whatever the race left, the index takes writes now
    docs = [{"id": f"after-{i}", "title": "after the race"} for i in range(100)]
    deadline = time.time() + 60
    while True:
        r = http.post(f"/bulk-indexing/{index}", json=docs)
        if r.status_code != 409 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 202, r.text
    op = wait_operation(http, r.json()["operation_id"], 300)
    assert op["status"] == "completed", op
    hits = http.get(f"/indexes/{index}/search", params={"q": "after race", "operator": "and", "size": 0}).json()
    assert hits["total"] == 100
    assert http.post(f"/indexes/{index}/verify").json()["ok"]


# ------------------------------------------------------------------ 7
class _SlowMongo:
    """TEST ONLY: delegates to the real MongoStore; the index-record calls take 1 s."""

    SLOW = {"get_index_meta", "create_index_meta", "list_index_metas", "replace_index_settings",
            "mark_index_deleting"}

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        attr = getattr(self._real, name)
        if name not in self.SLOW:
            return attr

        def slow(*args, **kwargs):
            time.sleep(1.0)
            return attr(*args, **kwargs)

        return slow


def test_no_mongodb_call_blocks_the_event_loop(service):
    from raysearch.app.service import SearchService

    svc = SearchService(service.settings)
    svc.mongo = svc.catalog.mongo = svc.ingest.intake = _SlowMongo(svc.mongo)

    async def scenario():
        stalls = []

        async def heartbeat(stop: asyncio.Event):
            while not stop.is_set():
                before = time.monotonic()
                await asyncio.sleep(0.01)
                stalls.append(time.monotonic() - before)

        stop = asyncio.Event()
        beat = asyncio.ensure_future(heartbeat(stop))
        await svc.create_index("loop-free", {"shards": 1})
        await svc.put_fields("loop-free", {"tag": {"type": "keyword"}})
        await svc.list_indexes()
        await svc.stats()
        await svc.bulk("loop-free", b'[{"id": "a", "title": "loop", "tag": "x"}]', "application/json")
        stop.set()
        await beat
        await svc.delete_index("loop-free")
        return max(stalls)

    worst = asyncio.run(scenario())
    assert worst < 0.5, f"the event loop stalled {worst:.2f} s on a MongoDB call"


# ------------------------------------------------------------------ 8
def test_readiness_requests_given_up_during_a_slow_start_wedge_nothing(http, service):
    """Every IndexWorker restarted at once (a slow start on 2 cores), while clients with a
    50 ms timeout ask /readyz over and over and give up: the service is ready soon after."""
    assert http.get("/readyz").status_code == 200
    for i in range(service.settings.workers):
        ray.kill(ray.get_actor(registry.worker_name(i), namespace=NAMESPACE), no_restart=False)
    given_up = 0
    deadline = time.monotonic() + 6
    with httpx.Client(base_url=service.url, timeout=0.05) as impatient:
        while time.monotonic() < deadline:
            try:
                impatient.get("/readyz")
            except httpx.TimeoutException:
                given_up += 1
    assert given_up > 5
    deadline = time.monotonic() + 90
    while True:
        r = http.get("/readyz", timeout=30)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    # the workers take calls from the ingress and the tracker again: a bulk completes
    _bulk(http, "after-slow-start", [{"id": "s1", "title": "ready again"}])
