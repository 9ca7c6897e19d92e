"""Issue 14: finished operations leave the tracker's memory and are answered from MongoDB
(get, wait, retry, the paged listing); retention deletes old finished ones, never an
active one (docs/api.md "Following an operation")."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import ray

from raysearch.actors import registry
from raysearch.config import NAMESPACE
from raysearch.index.batch import encode_payload
from raysearch.ops.operation import Operation
from raysearch.status import OperationStatus
from raysearch.storage.mongo import TTL_INDEX, MongoStore
from tests.conftest import wait_operation
from tests.integration.helpers import held_in_memory


def _tracker():
    return ray.get_actor(registry.TRACKER, namespace=NAMESPACE)


def _until_evicted(op_ids: list[str], timeout_s: float = 60) -> None:
    deadline = time.time() + timeout_s
    while any(held := held_in_memory(_tracker(), op_ids)):
        assert time.time() < deadline, f"still in the tracker's memory: {held}"
        time.sleep(0.2)


def test_finished_operations_are_answered_from_mongodb(http):
    index = "ophist"
    ids = [http.put(f"/indexes/{index}/documents/d{i}", json={"title": f"doc {i}"}).json()["operation_id"]
           for i in range(3)]
    for op_id in ids:
        assert wait_operation(http, op_id, 120)["status"] == "completed"
    _until_evicted(ids)
    for op_id in ids:  # GET, and the wait of a PUT, answer from the checkpoint
        op = http.get(f"/bulk-operations/{op_id}").json()
        assert op["status"] == "completed" and op["documents"] == {"total": 1, "indexed": 1, "failed": 0}, op
        assert ray.get(_tracker().wait_indexed.remote(op_id), timeout=60)["status"] == "completed"
    assert ray.get(_tracker().get.remote("no-such-op"), timeout=60) is None
    assert http.get("/bulk-operations/no-such-op").status_code == 404
    # a retry of a finished operation without failed batches changes nothing and stays out of memory
    assert http.post(f"/bulk-operations/{ids[0]}/retry").json()["status"] == "completed"
    assert held_in_memory(_tracker(), ids[:1]) == [False]


def test_listing_pages_newest_first(http):
    index = "ophist-pages"
    ids = []
    for i in range(7):
        r = http.post(f"/bulk-indexing/{index}", json=[{"id": f"p{i}", "title": f"page {i}"}])
        assert r.status_code == 202, r.text
        ids.append(r.json()["operation_id"])
    for op_id in ids:
        wait_operation(http, op_id, 120)
    seen, after, pages = [], None, 0
    while True:
        params = {"index": index, "limit": 3, **({"after": after} if after else {})}
        page = http.get("/bulk-operations", params=params).json()
        assert set(page) == {"operations", "next"}
        assert len(page["operations"]) <= 3 and all(op["index"] == index for op in page["operations"])
        seen += [op["operation_id"] for op in page["operations"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert seen == ids[::-1] and pages == 3
    default = http.get("/bulk-operations", params={"index": index}).json()
    assert [op["operation_id"] for op in default["operations"]] == ids[::-1] and default["next"] is None
    everything = http.get("/bulk-operations", params={"limit": 2}).json()
    assert len(everything["operations"]) == 2 and everything["next"]
    assert everything["operations"][0]["created_at"] >= everything["operations"][1]["created_at"]
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"after": "not-a-cursor"}):
        r = http.get("/bulk-operations", params=bad)
        assert r.status_code == 400 and r.json()["error"]["type"], (bad, r.text)


def test_retry_brings_a_finished_failed_operation_back(http, service):
    """A failed operation that only MongoDB holds (as after months, or a restart): retry
    loads it back into memory, runs its failed batch from the intake log, and it completes."""
    index = "ophist-retry"
    assert http.put(f"/indexes/{index}").status_code in (201, 409)
    mongo = MongoStore(service.settings.mongo_uri, service.settings.mongo_db)
    try:
        op_id = f"failed-{time.time_ns()}"
        mongo.put_batches(op_id, index, [encode_payload([{"id": "late", "title": "brought back"}])])
        op = Operation.new(op_id, index, [1], [])
        op.batch_failed(0, "indexing failed after 3 attempts: (made up by the test)", ["late"])
        assert op.refresh_status() == OperationStatus.FAILED
        mongo.save_operation(op.to_doc())
        assert held_in_memory(_tracker(), [op_id]) == [False]
        assert http.get(f"/bulk-operations/{op_id}").json()["status"] == "failed"
        assert http.post(f"/bulk-operations/{op_id}/retry").status_code == 202
        final = wait_operation(http, op_id, 120)
        assert final["status"] == "completed" and final["errors"] == [], final
        assert http.get(f"/indexes/{index}/documents/late").json()["document"]["title"] == "brought back"
        _until_evicted([op_id])
    finally:
        mongo.close()


def test_retention_deletes_old_finished_operations_only(http, service):
    """The sweep deletes terminal operations finished before its cutoff, never an active one.

    Everything here is set against what else deletes finished operations in the background,
    so that only the sweep called here can make or break an assertion: the TTL index (7 days)
    and the tracker's own periodic sweep (the default retention, 7 days) would both delete an
    operation a month old at any moment. The old operations are two hours old, and the sweep
    is called with a one-hour retention."""
    mongo = MongoStore(service.settings.mongo_uri, service.settings.mongo_db)
    index = "ophist-retention"
    two_hours_ago = time.time() - 2 * 3600
    old_done, old_active = f"old-done-{time.time_ns()}", f"old-active-{time.time_ns()}"
    try:
        ttl = mongo.operations.index_information()[TTL_INDEX]
        assert ttl["key"] == [("finished_at", 1)] and ttl["expireAfterSeconds"] == 7 * 86400
        done = Operation.new(old_done, index, [], [{"position": 0, "id": None, "reason": "bad"}])
        done.created_at = done.completed_at = two_hours_ago  # failed at once, two hours ago
        mongo.save_operation(done.to_doc())
        stored = mongo.operations.find_one({"_id": old_done})
        assert stored["status"] == "failed" and isinstance(stored["finished_at"], datetime)
        # An active checkpoint with a stray finished_at as old (written by hand): status decides,
        # it stays. (A real checkpoint of an active operation has no finished_at: asserted below.)
        active = Operation.new(old_active, index, [1], [])
        active.created_at = two_hours_ago
        mongo.save_operation(active.to_doc())
        assert "finished_at" not in mongo.operations.find_one({"_id": old_active})
        mongo.operations.update_one({"_id": old_active},
                                    {"$set": {"finished_at": datetime.now(timezone.utc) - timedelta(hours=2)}})
        recent = http.put(f"/indexes/{index}/documents/r", json={"title": "recent"}).json()["operation_id"]
        assert wait_operation(http, recent, 120)["status"] == "completed"
        _until_evicted([recent])  # from here on GET reads it from MongoDB alone

        swept = ray.get(_tracker().sweep.remote(3600.0), timeout=120)  # retention: one hour
        assert swept >= 1
        assert http.get(f"/bulk-operations/{old_done}").status_code == 404
        assert mongo.operations.find_one({"_id": old_active}) is not None
        assert http.get(f"/bulk-operations/{recent}").json()["status"] == "completed"
        ray.get(_tracker().sweep.remote(0.0), timeout=120)  # no retention at all: every finished one goes
        assert http.get(f"/bulk-operations/{recent}").status_code == 404
        assert mongo.operations.find_one({"_id": old_active}) is not None
    finally:
        mongo.operations.delete_one({"_id": old_active})  # never let a restarted tracker resume it
        mongo.intake.delete_many({"op": old_active})
        mongo.close()
