"""The calls a batch makes, counted by the actors themselves (raysearch/actors/traffic.py):
deterministic where timings are not, so a change that adds a round trip per batch, or a
call per shard per document, fails here rather than as a slower benchmark on a cluster.

A bulk of B batches into an index of S shards costs: one `create` (and one admission
check) at the tracker per request, one `index_batch` per batch at a worker, one `apply`
per batch per shard; the bytes the workers say they sent each shard are the bytes the
shard says it received, and the chunk bytes the shards handed the persistence actor are
what it wrote to MongoDB. Real Ray, RocksDB and MongoDB server (the shared service)."""

from __future__ import annotations

import ray

from raysearch.actors import registry
from raysearch.actors.traffic import combined, difference
from raysearch.config import NAMESPACE
from tests.conftest import debian_docs, wait_operation

INDEX = "callsperbatch"
SHARDS = 3


def _traffic(service) -> dict:
    """Every actor's counts: per worker, per shard of the index, the tracker, persistence."""
    handles = {"tracker": registry.find(registry.TRACKER), "persistence": registry.find(registry.PERSISTENCE)}
    handles.update({f"worker {i}": h for i, h in enumerate(registry.workers(service.settings))})
    handles.update({registry.shard_name(INDEX, n): ray.get_actor(registry.shard_name(INDEX, n), namespace=NAMESPACE)
                    for n in range(SHARDS)})
    return dict(zip(handles, ray.get([h.traffic.remote() for h in handles.values()], timeout=60)))


def _workers(snap: dict) -> dict:
    return combined([v for k, v in snap.items() if k.startswith("worker ")])


def _shards(snap: dict) -> dict:
    return combined([snap[registry.shard_name(INDEX, n)] for n in range(SHARDS)])


def test_each_batch_costs_one_worker_call_and_one_apply_per_shard(http, service):
    http.delete(f"/indexes/{INDEX}")
    assert http.put(f"/indexes/{INDEX}", json={"shards": SHARDS}).status_code == 201
    before = _traffic(service)
    requests, docs_per_request = 2, 1500
    batches = 0
    for r in range(requests):
        docs = debian_docs(r * docs_per_request, (r + 1) * docs_per_request)
        answer = http.post(f"/bulk-indexing/{INDEX}", json=docs)
        assert answer.status_code == 202, answer.text
        op = wait_operation(http, answer.json()["operation_id"])
        assert op["status"] == "completed", op
        batches += op["batches"]["total"]
    after = _traffic(service)
    assert batches >= 4  # the bulk really was split (batch_size 500 by default)

    workers = difference(_workers(after), _workers(before))
    shards = difference(_shards(after), _shards(before))
    tracker = difference(after["tracker"], before["tracker"])
    assert workers["calls"] == {"index_batch": batches}  # once each: no retries on a healthy service
    assert shards["calls"]["apply"] == batches * SHARDS  # 500 documents reach every shard
    assert tracker["calls"]["create"] == requests
    assert tracker["calls"].get("admission", 0) <= requests
    # What travelled, seen from both ends
    names = {registry.shard_name(INDEX, n) for n in range(SHARDS)}
    sent = sum(workers["sent"].get(name, 0) for name in names)
    assert sent == shards["received"]["index workers"] > docs_per_request * requests * 500
    persistence = difference(after["persistence"], before["persistence"])
    assert sum(persistence["received"].get(name, 0) for name in names) == shards["sent"][registry.PERSISTENCE] > 0
    # The drain's rounds to the shards: one collect and one acknowledgement per shard visited
    assert shards["calls"]["collect_changes"] >= SHARDS
    assert abs(shards["calls"]["collect_changes"] - shards["calls"]["ack_changes"]) <= SHARDS  # a cycle in flight
    # one tracker report per cycle for every shard's watermark, never one per shard
    assert tracker["calls"].get("shards_persisted", 0) <= shards["calls"]["collect_changes"] / SHARDS + 1


def test_lists_queries_cached_are_read_again_once_a_bulk_has_made_them_stale(http, service):
    """After a bulk, each shard reads again (once idle) the lists searches had cached and the
    bulk's writes made stale (ShardIndex.rewarm, as Lucene warms a new reader), so the first
    searches after it do not decode them; what the searches see is the new documents."""
    from tests.integration.helpers import wait_until

    index = "rewarm"
    http.delete(f"/indexes/{index}")
    assert http.put(f"/indexes/{index}", json={"shards": 2}).status_code == 201
    docs = debian_docs(0, 1200)
    op = http.post(f"/bulk-indexing/{index}", json=docs[:1000]).json()["operation_id"]
    assert wait_operation(http, op)["status"] == "completed"
    before = http.post(f"/indexes/{index}/search", json={"q": "library data", "size": 3}).json()["total"]
    shards = [ray.get_actor(registry.shard_name(index, n), namespace=NAMESPACE) for n in range(2)]
    warmed = [ray.get(s.info.remote(), timeout=60)["posting_cache"]["rewarmed"] for s in shards]
    op = http.post(f"/bulk-indexing/{index}", json=docs[1000:]).json()["operation_id"]
    assert wait_operation(http, op)["status"] == "completed"

    def rewarmed():
        infos = [ray.get(s.info.remote(), timeout=60)["posting_cache"] for s in shards]
        done = all(i["stale_to_rewarm"] == 0 for i in infos)
        return done and sum(i["rewarmed"] for i in infos) > sum(warmed) and infos

    wait_until(rewarmed, service.settings.snapshot_idle_s + 60, "the stale lists read again")
    after = http.post(f"/indexes/{index}/search", json={"q": "library data", "size": 3}).json()["total"]
    assert after > before  # the rewarmed lists hold the second bulk's documents
    http.delete(f"/indexes/{index}")
