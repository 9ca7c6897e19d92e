"""The tracker's logic (ops/tracker.py) without Ray: an in-memory store and dispatcher
stand in for MongoDB and the IndexWorker pool. Operations are driven to their end,
retried, resumed after a restart, and evicted from memory once finished."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace

from raysearch.config import Settings
from raysearch.errors import MongoUnavailable, StorageFull
from raysearch.index.batch import encode_payload
from raysearch.ingest.intake import overload
from raysearch.ops.operation import Operation
from raysearch.ops.tracker import OperationTracker

SETTINGS = Settings(backoff_base_s=0.001, index_attempts=3, operation_sweep_interval_s=3600)


class MemoryStore:
    """TEST ONLY: the OperationStore protocol over dicts (MongoStore in production)."""

    def __init__(self):
        self.operations: dict[str, dict] = {}
        self.intake: dict[tuple[str, int], bytes] = {}
        self.saves = 0

    def load_active_operations(self):
        return [dict(d) for d in self.operations.values() if d["status"] in ("indexing", "persisting")]

    def load_operation(self, op_id):
        doc = self.operations.get(op_id)
        return dict(doc) if doc else None

    def save_operation(self, doc):
        self.saves += 1
        self.operations[doc["operation_id"]] = dict(doc)

    def delete_batches(self, op_id, batch_nos):
        for b in batch_nos:
            self.intake.pop((op_id, b), None)

    def get_batch(self, op_id, batch_no):
        return self.intake.get((op_id, batch_no))

    def list_operations(self, index, limit, cursor):
        docs = sorted(self.operations.values(), key=lambda d: (-d["created_at"], d["operation_id"]))
        return [dict(d) for d in docs if index is None or d["index"] == index][:limit]

    def sweep_operations(self, finished_before: datetime) -> int:
        return 0


class Workers:
    """TEST ONLY: a dispatcher; each batch lands on shard 0 at the next opstamp, unless told to fail."""

    def __init__(self):
        self.opstamp = 0
        self.calls: list[tuple[str, int]] = []
        self.failing: set[tuple[str, int]] = set()
        self.outage = 0  # the next calls raise MongoUnavailable
        self.disk_full = 0  # the next calls raise StorageFull
        self.failed = 0

    async def dispatch(self, index, op_id, batch):
        self.calls.append((op_id, batch))
        if self.outage:
            self.outage -= 1
            raise MongoUnavailable("MongoDB unreachable (test)")
        if self.disk_full:
            self.disk_full -= 1
            raise StorageFull("shard idx:0: the disk under its RocksDB is full (test)")
        if (op_id, batch) in self.failing:
            self.failed += 1
            raise RuntimeError("worker died (test)")
        self.opstamp += 1
        return {"opstamps": {0: self.opstamp}, "indexed": 2, "failed": []}


class Hooks:
    def __init__(self):
        self.sent: list[dict] = []

    async def notify(self, op: Operation):
        self.sent.append(op.view())


def _tracker(store, workers, hooks=None):
    return OperationTracker(SETTINGS, store, workers.dispatch, (hooks or Hooks()).notify)


async def _settle(tracker, op_id, status, timeout_s=5.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        view = await tracker.get(op_id)
        if view["status"] == status or asyncio.get_running_loop().time() > deadline:
            return view
        await asyncio.sleep(0.01)


def _submit(store, op_id, batches):
    for b in range(batches):
        store.intake[(op_id, b)] = encode_payload([{"id": f"{op_id}-{b}-{i}", "t": "x"} for i in range(2)])


def test_an_operation_is_driven_to_completed_and_leaves_memory(no_ray):
    async def scenario():
        store, workers, hooks = MemoryStore(), Workers(), Hooks()
        tracker = _tracker(store, workers, hooks)
        _submit(store, "op1", 3)
        view = await tracker.create("op1", "idx", [2, 2, 2], [], webhook="http://127.0.0.1/x", may_exist=False)
        assert view["status"] == "indexing" and store.operations["op1"]["status"] == "indexing"  # durable first
        view = await _settle(tracker, "op1", "persisting")
        assert view["batches"]["indexed"] == 3 and tracker.pending_batches() == 0
        assert tracker.indexes_to_drain() == ["idx"]
        # the persistence backlog counts for backpressure too (ingest/intake.py: overload)
        assert tracker.admission("idx") == (0, 3, None)
        limits = SimpleNamespace(max_pending_batches=10, max_unpersisted_batches=3)
        assert "3 batches are waiting to be persisted" in overload(tracker.admission("idx"), limits)
        await tracker.shards_persisted({"idx": {0: workers.opstamp}})
        view = await _settle(tracker, "op1", "completed")
        assert tracker.admission("idx") == (0, 0, None) and overload(tracker.admission("idx"), limits) is None
        assert view["documents"] == {"total": 6, "indexed": 6, "failed": 0}
        assert "op1" not in tracker.ops and tracker.memory_stats()["operations"] == 0  # evicted
        assert store.operations["op1"]["status"] == "completed"
        assert not any(k[0] == "op1" for k in store.intake)  # intake payloads dropped once persisted
        assert [h["status"] for h in hooks.sent] == ["completed"]
        assert (await tracker.get("op1"))["status"] == "completed"  # read back from the store

    asyncio.run(scenario())


def test_a_failing_batch_fails_after_its_attempts_and_a_retry_completes_it(no_ray):
    async def scenario():
        store, workers, hooks = MemoryStore(), Workers(), Hooks()
        tracker = _tracker(store, workers, hooks)
        _submit(store, "op2", 2)
        workers.failing.add(("op2", 1))
        workers.outage = 5  # an outage first: waited out, no attempt used
        await tracker.create("op2", "idx", [2, 2], [], webhook="http://127.0.0.1/x", may_exist=False)
        view = await _settle(tracker, "op2", "persisting")
        await tracker.shards_persisted({"idx": {0: workers.opstamp}})
        view = await _settle(tracker, "op2", "partially_completed")
        assert workers.failed == 3  # the outage's five calls used up no attempt
        assert view["batches"]["failed"] == 1 and "after 3 attempts" in view["errors"][0]["reason"]
        assert view["errors"][0]["ids"] == ["op2-1-0", "op2-1-1"]
        workers.failing.clear()
        await tracker.retry("op2")
        await _settle(tracker, "op2", "persisting")
        await tracker.shards_persisted({"idx": {0: workers.opstamp}})
        view = await _settle(tracker, "op2", "completed")
        assert view["errors"] == [] and [h["status"] for h in hooks.sent] == ["partially_completed", "completed"]

    asyncio.run(scenario())


def test_a_restarted_tracker_resumes_unfinished_operations(no_ray):
    async def scenario():
        store, workers = MemoryStore(), Workers()
        never = asyncio.Event()

        async def stuck(index, op_id, batch):  # the first process dies with batch 1 in flight
            if batch == 1:
                await never.wait()
            return await workers.dispatch(index, op_id, batch)

        first = OperationTracker(SETTINGS, store, stuck, Hooks().notify)
        _submit(store, "op3", 2)
        await first.create("op3", "idx", [2, 2], [], may_exist=False)
        while ("op3", 0) not in workers.calls:
            await asyncio.sleep(0.01)
        for task in [*first._drivers.values(), first._sweeper, first._flusher]:  # kill -9
            if task is not None:
                task.cancel()
        second = _tracker(store, workers)  # a new process: loads the active checkpoints
        assert "op3" in second.ops
        second.start()
        view = await _settle(second, "op3", "persisting")
        assert view["batches"]["indexed"] == 2 and workers.calls.count(("op3", 1)) == 1
        await second.shards_persisted({"idx": {0: workers.opstamp}})
        assert (await _settle(second, "op3", "completed"))["status"] == "completed"

    asyncio.run(scenario())


async def _persisting(workers, op_id: str, batches: int):
    """(store, tracker) once an operation of `batches` batches of 2 is indexed everywhere."""
    store = MemoryStore()
    tracker = _tracker(store, workers)
    _submit(store, op_id, batches)
    await tracker.create(op_id, "idx", [2] * batches, [], may_exist=False)
    await _settle(tracker, op_id, "persisting")
    return store, tracker


def test_a_rebuilt_shard_runs_its_unpersisted_batches_again(no_ray):
    async def scenario():
        workers = Workers()
        _, tracker = await _persisting(workers, "op4", 2)
        calls = len(workers.calls)
        await tracker.shard_started_empty("idx", 0)
        view = await _settle(tracker, "op4", "persisting")
        assert len(workers.calls) == calls + 2 and view["batches"]["indexed"] == 2

    asyncio.run(scenario())


def test_a_full_disk_holds_the_index_s_writes_without_failing_them(no_ray):
    async def scenario():
        store, workers = MemoryStore(), Workers()
        tracker = _tracker(store, workers)
        _submit(store, "op5", 1)
        workers.disk_full = 30  # many tries while the disk stays full: none uses up an attempt
        await tracker.create("op5", "idx", [2], [], may_exist=False)
        while workers.disk_full > 25:
            await asyncio.sleep(0.01)
        pending, _, blocked = tracker.admission("idx")
        assert pending == 1 and "disk under its RocksDB is full" in blocked
        assert tracker.admission("other").blocked is None  # other indexes take writes
        view = await _settle(tracker, "op5", "persisting", timeout_s=20)
        assert view["batches"]["failed"] == 0 and view["batches"]["indexed"] == 1
        assert tracker.admission("idx")[::2] == (0, None)  # freed: the index takes writes again

    asyncio.run(scenario())


def test_a_hold_keeps_later_writes_lists_them_in_order_and_lapses_unless_renewed(no_ray, monkeypatch):
    """A snapshot's or a reindex's hold (freeze): operations accepted after its cut wait,
    held_after lists them in the order they were accepted, and a hold whose holder stopped
    renewing it lapses, so the index's writes go on."""
    import raysearch.ops.tracker as core

    async def scenario():
        store, workers = MemoryStore(), Workers()
        tracker = _tracker(store, workers)
        _submit(store, "before", 1)
        await tracker.create("before", "idx", [2], [], may_exist=False)
        await _settle(tracker, "before", "persisting")
        tracker.freeze("idx", "t1")
        for op_id in ("late1", "late2"):
            await asyncio.sleep(0.01)  # distinct acceptance times
            _submit(store, op_id, 1)
            await tracker.create(op_id, "idx", [2], [], may_exist=False)
        await asyncio.sleep(0.3)
        assert ("late1", 0) not in workers.calls  # held
        assert tracker.held_after("idx", "t1") == (True, ["late1", "late2"])
        assert tracker.held_after("idx", "other") == (False, [])
        monkeypatch.setattr(core, "FREEZE_LEASE_S", 0.0)
        tracker.settled_before("idx", "t1")  # renews the hold, for 0 s now: the holder is taken for gone
        await asyncio.sleep(0.01)
        view = await _settle(tracker, "late2", "persisting")
        assert view["batches"]["indexed"] == 1 and tracker.held_after("idx", "t1") == (False, [])

    asyncio.run(scenario())


def test_one_report_carries_every_shard_s_watermark(no_ray):
    """The persistence actor reports all the watermarks a cycle moved in one call
    (shards_persisted): an operation spread over two shards completes only once both
    shards' marks cover it, whether they come in one report or in several."""
    class TwoShards(Workers):
        async def dispatch(self, index, op_id, batch):
            answer = await super().dispatch(index, op_id, batch)
            return {**answer, "opstamps": {0: self.opstamp, 1: self.opstamp}}

    async def scenario():
        workers = TwoShards()
        _, tracker = await _persisting(workers, "op9", 2)
        await tracker.shards_persisted({"idx": {0: workers.opstamp}})
        assert (await tracker.get("op9"))["status"] == "persisting"  # shard 1 has not persisted it
        await tracker.shards_persisted({"idx": {0: workers.opstamp, 1: workers.opstamp}, "other": {0: 5}})
        view = await _settle(tracker, "op9", "completed")
        assert view["batches"]["persisted"] == 2 and tracker.watermarks["other"] == {"0": 5}

    asyncio.run(scenario())
