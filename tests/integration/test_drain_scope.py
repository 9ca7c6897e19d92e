"""The persistence actor's cycle costs O(indexes with active work), not O(all indexes):
an idle cycle visits only the shards of the indexes the tracker names as having batches
not yet persisted, and a full cycle every `full_drain_interval_s` drains the rest (changes
the tracker never knew of). Real Ray, RocksDB and MongoDB server."""

from __future__ import annotations

import time

import ray

from raysearch import indexmeta
from raysearch.actors import registry
from raysearch.config import NAMESPACE
from raysearch.index.batch import split_batch
from raysearch.storage.mongo import MongoStore
from tests.conftest import debian_docs, wait_operation
from tests.integration.helpers import shard_handle

INDEX = "drainscope"
SHARDS = 2


def _infos() -> list[dict]:
    return [ray.get(shard_handle(INDEX, n).info.remote(), timeout=60) for n in range(SHARDS)]


def _visits() -> list[int]:
    """The persistence actor's drain visits to each shard of the index (its status)."""
    persistence = ray.get_actor(registry.PERSISTENCE, namespace=NAMESPACE)
    status = ray.get(persistence.status.remote(), timeout=60)
    return [status["visits"].get(f"{INDEX}:{n}", 0) for n in range(SHARDS)]


def test_idle_index_is_not_polled_and_untracked_changes_still_drain(http, service):
    http.delete(f"/indexes/{INDEX}")
    assert http.put(f"/indexes/{INDEX}", json={"shards": SHARDS}).status_code == 201
    op = http.post(f"/bulk-indexing/{INDEX}", json=debian_docs(0, 400)).json()["operation_id"]
    assert wait_operation(http, op)["status"] == "completed"
    # Drained while the operation was active...
    visits = _visits()
    assert all(v >= 1 for v in visits), visits
    time.sleep(4)  # ...but ~20 idle cycles later, at most one full cycle has visited it
    after = _visits()
    assert all(a - v <= 2 for a, v in zip(after, visits)), (visits, after)
    persistence = ray.get_actor(registry.PERSISTENCE, namespace=NAMESPACE)
    assert ray.get(persistence.status.remote(), timeout=60)["last_error"] is None  # idle cycles, not failed ones

    # A batch written to the shards behind the tracker's back (as an operation that failed
    # after applying would leave): the periodic full cycle persists it without any flush.
    store = MongoStore(service.settings.mongo_uri, service.settings.mongo_db)
    try:
        _, analyzer, shards = indexmeta.parse(store.get_index_meta(INDEX))
    finally:
        store.close()
    extra = [{**d, "id": f"untracked-{d['id']}"} for d in debian_docs(400, 450)]
    per_shard, indexed, failed = split_batch(extra, [], shards, analyzer)
    assert not failed and len(per_shard) == SHARDS
    for n, part in per_shard.items():
        ray.get(shard_handle(INDEX, n).apply.remote("untracked:0", part), timeout=60)
    assert sum(i["pending_changes"] for i in _infos()) > 0
    deadline = time.time() + service.settings.full_drain_interval_s + 60
    while sum(i["pending_changes"] for i in _infos()) and time.time() < deadline:
        time.sleep(0.5)
    assert sum(i["pending_changes"] for i in _infos()) == 0, "the full cycle never drained untracked changes"
    report = http.post(f"/indexes/{INDEX}/verify").json()
    assert report["ok"], report
    assert http.get(f"/indexes/{INDEX}/documents/{extra[0]['id']}").status_code == 200
    http.delete(f"/indexes/{INDEX}")


def test_a_cycle_reports_every_shard_s_watermark_in_one_tracker_call(http):
    """Calls per cycle, not timings (deterministic): however many shards a cycle drained, the
    persistence actor tells the tracker their watermarks in one call (was one per shard,
    each scanning the index's waiting operations)."""
    index = "drainreports"
    http.delete(f"/indexes/{index}")
    assert http.put(f"/indexes/{index}", json={"shards": 4}).status_code == 201
    persistence = ray.get_actor(registry.PERSISTENCE, namespace=NAMESPACE)
    before = ray.get(persistence.status.remote(), timeout=60)
    docs = debian_docs(0, 2000)
    ops = [http.post(f"/bulk-indexing/{index}", json=docs[i:i + 250]).json()["operation_id"]
           for i in range(0, len(docs), 250)]
    for op in ops:
        assert wait_operation(http, op)["status"] == "completed"
    after = ray.get(persistence.status.remote(), timeout=60)
    reports = after["tracker_reports"] - before["tracker_reports"]
    cycles = after["cycles"] - before["cycles"]
    visits = sum(after["visits"].get(f"{index}:{n}", 0) for n in range(4))
    assert 1 <= reports <= cycles, (reports, cycles)
    assert reports < visits, (reports, visits)  # several shards' marks went in each report
    http.delete(f"/indexes/{index}")
