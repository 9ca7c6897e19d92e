"""The tracker's logic: the state of every bulk operation, and driving each one to its end.

Plain asyncio, no Ray: the TrackerActor (actors/tracker.py) wraps it with its store
(MongoDB), its dispatcher (the IndexWorker pool) and its metrics; unit tests give it
in-memory ones (tests/unit/test_tracker_core.py).

- Batches accepted (in the intake log) but not indexed are dispatched, each retried with
  backoff; an outage of MongoDB waits and never uses up an attempt.
- After a restart it reloads its active checkpoints and resumes every unfinished
  operation from the intake log; shards ignore batches they already applied.
- Memory and per-call cost are bounded by active work (docs/design.md invariant 7): only
  active operations live in `ops`; a finished one leaves once its final checkpoint is saved
  and is read from the store when asked for. Per index, counters of pending and unpersisted
  batches and the set of operations with unpersisted batches are kept up to date on every
  change, so backpressure checks, watermark reports and stats touch only what is in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, NamedTuple, Protocol

from raysearch.errors import Conflict, MongoUnavailable, StorageFull
from raysearch.index.batch import decode_payload
from raysearch.ops import paging
from raysearch.ops.operation import BatchState, Operation
from raysearch.status import TERMINAL, OperationStatus
from raysearch.retry import Backoff

FREEZE_LEASE_S = 300.0  # a snapshot's or a reindex's hold on an index's writes, unless renewed
log = logging.getLogger("raysearch.tracker")
FLUSH_CONCURRENCY = 8  # coalesced checkpoints written at once
FLUSH_INTERVAL_S = 0.2  # how long a non-durable change may wait for its checkpoint
GAUGE_PERIOD_S = 0.5  # gauges of an index are exported at most this often


class Admission(NamedTuple):
    """The tracker's answer to 'may a bulk come in now?' (ingest/intake.py decides)."""

    pending: int  # batches accepted, not yet indexed
    unpersisted: int  # batches indexed, not yet persisted to MongoDB
    blocked: str | None  # why the index's writes wait (a full disk), or None


class OperationStore(Protocol):
    """Blocking calls (run in threads): storage/mongo.py's MongoStore has them all."""

    def load_active_operations(self) -> list[dict]: ...
    def load_operation(self, op_id: str) -> dict | None: ...
    def save_operation(self, doc: dict) -> None: ...
    def delete_batches(self, op_id: str, batch_nos: list[int]) -> None: ...
    def get_batch(self, op_id: str, batch_no: int) -> bytes | None: ...
    def list_operations(self, index: str | None, limit: int, cursor) -> list[dict]: ...
    def sweep_operations(self, finished_before: datetime) -> int: ...


Dispatch = Callable[[str, str, int], Awaitable[dict]]  # (index, op id, batch) -> {"opstamps", "indexed", "failed"}
Notify = Callable[[Operation], Awaitable[None]]  # send the final operation to its webhook


class Metrics(Protocol):
    def count(self, name: str, value: float, **tags) -> None: ...
    def gauge(self, name: str, value: float, **tags) -> None: ...


class NoMetrics:
    def count(self, name: str, value: float, **tags) -> None:
        pass

    def gauge(self, name: str, value: float, **tags) -> None:
        pass


class OperationTracker:
    def __init__(self, settings, store: OperationStore, dispatch: Dispatch, notify: Notify,
                 metrics: Metrics | None = None):
        self.settings, self.store, self.dispatch, self.notify = settings, store, dispatch, notify
        self.metrics = metrics or NoMetrics()
        self.backoff = Backoff(base=settings.backoff_base_s, cap=5.0)
        self.ops: dict[str, Operation] = {}  # active operations only (and finished ones until their final save)
        self.watermarks: dict[str, dict[str, int]] = {}  # index -> shard -> persisted opstamp
        self._drivers: dict[str, asyncio.Task] = {}
        self._started = False
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._dirty: set[str] = set()  # operations changed but not yet checkpointed
        self._flusher: asyncio.Task | None = None
        self._intake_to_drop: dict[str, list[int]] = {}
        self._save_locks: dict[str, asyncio.Lock] = {}  # one checkpoint write at a time per operation
        # Incremental bookkeeping, O(1) per question: per operation its (pending, unpersisted)
        # batch counts; per index their sums and the operations in memory / with unpersisted batches.
        self._counts: dict[str, tuple[int, int]] = {}
        self._pending_by_index: dict[str, int] = {}
        self._unpersisted_by_index: dict[str, int] = {}
        self._pending_total = 0
        self._unpersisted_total = 0
        self._by_index: dict[str, set[str]] = {}
        self._unpersisted_ops: dict[str, set[str]] = {}
        self._sweeper: asyncio.Task | None = None
        self._gauges_due: set[str] = set()
        self.evicted = 0
        self.blocked: dict[str, str] = {}  # index -> why its batches wait (a full disk under a shard)
        # index -> (token, time): a snapshot's cut (app/snapshots.py). Batches of operations
        # created at or after the time wait; older ones run, so the snapshot can wait for them.
        # index -> (token, cut, lease end): a snapshot's or a reindex's hold on its writes
        self.frozen: dict[str, tuple[str, float, float]] = {}
        for doc in store.load_active_operations():  # a query on status: never the whole history
            self._register(Operation.from_doc(doc))

    # ------------------------------------------------------------ memory
    def _register(self, op: Operation) -> None:
        op_id = op.operation_id
        self.ops[op_id] = op
        self._by_index.setdefault(op.index, set()).add(op_id)
        self._recount(op)

    def _recount(self, op: Operation) -> None:
        """Bring the per-index counters up to date with the operation's batch states (O(its batches))."""
        op_id, index = op.operation_id, op.index
        new = op.counts() if self.ops.get(op_id) is op else (0, 0)
        old = self._counts.get(op_id, (0, 0))
        if new == old:
            return
        self._pending_by_index[index] = self._pending_by_index.get(index, 0) + new[0] - old[0]
        self._unpersisted_by_index[index] = self._unpersisted_by_index.get(index, 0) + new[1] - old[1]
        self._pending_total += new[0] - old[0]
        self._unpersisted_total += new[1] - old[1]
        if new == (0, 0):
            self._counts.pop(op_id, None)
        else:
            self._counts[op_id] = new
        unpersisted = self._unpersisted_ops.setdefault(index, set())
        if new[1]:
            unpersisted.add(op_id)
        else:
            unpersisted.discard(op_id)

    def _evict(self, op: Operation) -> None:
        """A finished operation whose final checkpoint is saved leaves memory (it stays in the store)."""
        op_id = op.operation_id
        if self.ops.get(op_id) is not op:
            return
        del self.ops[op_id]
        self._recount(op)  # to zero
        index_ops = self._by_index.get(op.index)
        if index_ops is not None:
            index_ops.discard(op_id)
            if not index_ops:
                del self._by_index[op.index]
                if not self._unpersisted_ops.get(op.index):
                    self._unpersisted_ops.pop(op.index, None)
        self._dirty.discard(op_id)
        self._save_locks.pop(op_id, None)
        task = self._drivers.get(op_id)
        if task is not None and (task.done() or task is asyncio.current_task()):
            del self._drivers[op_id]
        self.evicted += 1

    async def _load(self, op_id: str) -> Operation | None:
        """An operation from memory, else its checkpoint (not put into memory)."""
        op = self.ops.get(op_id)
        if op is not None:
            return op
        doc = await asyncio.to_thread(self.store.load_operation, op_id)
        return Operation.from_doc(doc) if doc is not None else None

    # ------------------------------------------------------------ driving
    def start(self) -> None:
        """Resume unfinished operations and start the retention sweep (first call after start)."""
        if self._started:
            return
        self._started = True
        for op in list(self.ops.values()):
            if op.pending_batches():
                self._start_driver(op.operation_id)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    def _start_driver(self, op_id: str) -> None:
        task = self._drivers.get(op_id)
        if task is None or task.done():
            self._drivers[op_id] = asyncio.get_running_loop().create_task(self._drive(op_id))

    async def _drive(self, op_id: str) -> None:
        op = self.ops.get(op_id)
        try:
            while op is not None and (pending := op.pending_batches()):  # batches can become pending again
                await asyncio.gather(*(self._run_batch(op, b) for b in pending))
        finally:
            if self._drivers.get(op_id) is asyncio.current_task():
                del self._drivers[op_id]

    async def _run_batch(self, op: Operation, batch: int) -> None:
        while (cut := self._hold(op.index)) is not None and op.created_at >= cut[1]:
            await asyncio.sleep(0.2)  # accepted after a snapshot's (a reindex's) cut: waits for it to finish
        attempts = self.settings.index_attempts
        attempt, last_error = 0, None
        while attempt < attempts:
            try:
                result = await self.dispatch(op.index, op.operation_id, batch)
            except (MongoUnavailable, StorageFull) as exc:  # not the batch's fault: wait, no attempt used
                last_error, result = exc, None
                if isinstance(exc, StorageFull):
                    self.blocked[op.index] = exc.reason
            except Exception as exc:  # a worker or a shard died, the batch is poison...
                last_error, result = exc, None
                attempt += 1
                log.warning("batch %s:%d attempt %d failed: %s", op.operation_id, batch, attempt, exc)
            if result is not None:
                self.blocked.pop(op.index, None)
                if op.batch_indexed(batch, result["opstamps"], result["indexed"], result["failed"]):
                    self.metrics.count("docs_indexed", result["indexed"], index=op.index)
                    self.metrics.count("batches_indexed", 1, index=op.index)
                    # Not waited for: losing this mark in a crash only re-runs the batch (idempotent).
                    await self._checkpoint(op, durable=False)
                return
            if attempt < attempts:
                outage = isinstance(last_error, (MongoUnavailable, StorageFull))
                await asyncio.sleep(self.backoff.delay(2) if outage else self.backoff.delay(max(attempt - 1, 0)))
        reason = f"indexing failed after {attempts} attempts: {type(last_error).__name__}: {last_error}"
        self.metrics.count("batches_failed", 1, index=op.index)
        op.batch_failed(batch, reason[:2000], await self._batch_ids(op, batch))
        await self._checkpoint(op)

    async def _batch_ids(self, op: Operation, batch: int) -> list[str]:
        try:
            raw = await asyncio.to_thread(self.store.get_batch, op.operation_id, batch)
            docs, deletes = decode_payload(raw)[:2] if raw else ([], [])
            return [d["id"] for d in docs] + list(deletes)
        except Exception:  # noqa: BLE001 - the ids only illustrate the error; the failure stands
            return []

    async def _checkpoint(self, op: Operation, durable: bool = True) -> None:
        """Update derived state and save the operation. `durable=False` leaves the save to
        the flusher (coalesced, every FLUSH_INTERVAL_S): for facts that are re-derived after
        a crash (indexed marks: batches re-run idempotently; persisted marks: watermarks are
        reported again)."""
        persisted = op.apply_watermarks(self.watermarks.get(op.index, {}))
        if persisted:  # intake payloads are kept until their batch's persisted mark is saved
            self._intake_to_drop.setdefault(op.operation_id, []).extend(persisted)
        status = op.refresh_status()
        self._recount(op)
        if status in TERMINAL:
            durable = True  # a final status is checkpointed at once, not coalesced (then evicted)
        if durable:
            await self._save(op)
        else:
            self._dirty.add(op.operation_id)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        if status in TERMINAL or status is OperationStatus.PERSISTING:
            for event in self._waiters.pop(op.operation_id, []):
                event.set()
        self._export_gauges(op.index)
        if op.take_notification():
            asyncio.get_running_loop().create_task(self.notify(op))

    async def _flush_loop(self) -> None:
        while self._dirty:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            batch = list(self._dirty)
            self._dirty.clear()
            # else evicted: its final checkpoint, saved since, holds this change too
            ops = [op for op in (self.ops.get(op_id) for op_id in batch) if op is not None]
            for i in range(0, len(ops), FLUSH_CONCURRENCY):  # saves of one operation stay in order (_save)
                await asyncio.gather(*(self._save(op) for op in ops[i : i + FLUSH_CONCURRENCY]))

    async def _save(self, op: Operation) -> None:
        """Write the checkpoint, then drop intake payloads of persisted batches; waits out a
        MongoDB outage (nothing is acknowledged before it is saved).

        Saves of one operation run one at a time, in order, each writing a snapshot taken
        when its turn comes, so the last write is the newest state. A finished operation
        leaves memory once a snapshot of its final state is saved (not before: a crash in
        between must find it in the store)."""
        op_id = op.operation_id
        lock = self._save_locks.get(op_id)
        if lock is None:
            lock = self._save_locks[op_id] = asyncio.Lock()
        async with lock:
            for delay in self.backoff.delays():
                snapshot = op.to_doc()
                try:
                    await asyncio.to_thread(self.store.save_operation, snapshot)
                    drop = self._intake_to_drop.pop(op_id, [])
                    if drop:
                        await asyncio.to_thread(self.store.delete_batches, op_id, drop)
                    break
                except MongoUnavailable as exc:
                    log.warning("checkpoint of %s waits for MongoDB: %s", op_id, exc)
                    await asyncio.sleep(delay)
        if snapshot["status"] in {s.value for s in TERMINAL} and op.terminal and op_id not in self._intake_to_drop:
            self._evict(op)
        if self.ops.get(op_id) is not op and self._save_locks.get(op_id) is lock and not lock.locked():
            del self._save_locks[op_id]  # a late save of an evicted operation leaves no lock behind

    async def _sweep_loop(self) -> None:
        """Retention: delete finished operations older than operation_retention_s (the TTL
        index does it too where the server runs TTL monitors)."""
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - MongoDB away: next time
                log.warning("sweep of finished operations failed: %s", exc)
            await asyncio.sleep(self.settings.operation_sweep_interval_s)

    async def sweep(self, retention_s: float | None = None) -> int:
        """Delete terminal operations that finished more than `retention_s` (default: the
        setting) ago; returns how many. Active operations are never deleted."""
        retention = self.settings.operation_retention_s if retention_s is None else retention_s
        before = datetime.now(timezone.utc) - timedelta(seconds=retention)
        total = 0
        while True:
            n = await asyncio.to_thread(self.store.sweep_operations, before)
            total += n
            if n < 1000:
                return total

    # ------------------------------------------------------------ API
    async def create(self, op_id: str, index: str, batch_docs: list[int], errors: list[dict],
                     webhook: str | None = None, kind: str = "bulk", may_exist: bool = True) -> dict:
        """Register an operation whose batches are already in the intake log, and start it.
        `may_exist=False` (a fresh random id) skips looking for a finished one in the store."""
        self.start()
        if op_id not in self.ops:
            if may_exist and (done := await asyncio.to_thread(self.store.load_operation, op_id)) is not None:
                return Operation.from_doc(done).view()  # a caller-given id seen before, finished since: no-op
            if op_id in self.ops:  # created meanwhile
                return self.ops[op_id].view()
            op = Operation.new(op_id, index, batch_docs, errors, webhook, kind)
            self._register(op)
            await self._checkpoint(op)
        if op_id in self.ops:
            self._start_driver(op_id)
            return self.ops[op_id].view()
        return op.view()  # finished (and evicted) already

    async def wait_indexed(self, op_id: str, timeout_s: float = 60) -> dict | None:
        """Wait until every batch of the operation is indexed or failed (PUT/DELETE of one document)."""
        self.start()
        op = self.ops.get(op_id)
        if op is None:  # finished (or unknown): its checkpoint says
            done = await self._load(op_id)
            return done.view() if done is not None else None
        if op.pending_batches():
            event = asyncio.Event()
            self._waiters.setdefault(op_id, []).append(event)
            try:
                await asyncio.wait_for(event.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
        return op.view()

    async def shards_persisted(self, reports: dict[str, dict[int, int]]) -> None:
        """Persisted watermarks (index -> shard -> opstamp), all the persistence actor's cycle
        moved, in one call: each index's waiting operations are looked at once per report,
        not once per shard."""
        self.start()
        for index, shard_marks in reports.items():
            marks = self.watermarks.setdefault(index, {})
            moved = False
            for shard, upto in shard_marks.items():
                if marks.get(str(shard), -1) < upto:
                    marks[str(shard)] = upto
                    moved = True
            if not moved:
                continue
            for op_id in list(self._unpersisted_ops.get(index, ())):  # only operations waiting for a watermark
                op = self.ops.get(op_id)
                if op is not None and op.persistable(marks):  # else nothing changes: no checkpoint
                    await self._checkpoint(op, durable=False)

    async def shard_started_empty(self, index: str, shard: int) -> None:
        """A shard came up without its RocksDB (deleted, or its node lost) and was rebuilt
        from MongoDB: batches indexed there but not yet persisted are gone from it, so
        they run again from the intake log (other shards skip them: idempotent)."""
        self.start()
        for op_id in list(self._unpersisted_ops.get(index, ())):  # indexed, not persisted: active ones
            op = self.ops.get(op_id)
            if op is None:
                continue
            redo = op.unpersisted_on_shard(str(shard))
            if redo:
                log.warning("shard %s:%d rebuilt: re-running %d batches of %s", index, shard, len(redo),
                            op.operation_id)
                await self._checkpoint(op)
                self._start_driver(op.operation_id)

    async def get(self, op_id: str) -> dict | None:
        self.start()
        op = await self._load(op_id)
        return op.view() if op else None

    async def list(self, index: str | None = None, limit: int = 100, after: str | None = None) -> dict:
        """A page of operations from the store, newest first; active ones as they are in memory
        (newer than their last checkpoint). `after`: the previous page's `next`."""
        self.start()
        cursor = paging.decode_cursor(after) if after else None
        docs = await asyncio.to_thread(self.store.list_operations, index, limit + 1, cursor)
        more = len(docs) > limit
        docs = docs[:limit]
        views = [(self.ops[d["operation_id"]] if d["operation_id"] in self.ops else Operation.from_doc(d)).view()
                 for d in docs]
        last = docs[-1] if docs else None
        return {"operations": views,
                "next": paging.encode_cursor(last["created_at"], last["operation_id"]) if more and last else None}

    async def retry(self, op_id: str) -> dict | None:
        """Run the failed batches again; a finished operation comes back into memory for that."""
        self.start()
        op = await self._load(op_id)
        if op is None:
            return None
        if op_id not in self.ops:
            if not op.has_failed_batches():
                return op.view()  # nothing to retry: stays in the store only
            if op_id in self.ops:  # loaded meanwhile by another call
                op = self.ops[op_id]
            else:
                self._register(op)
        if op.reset_failed():
            await self._checkpoint(op)
            if op_id in self.ops:
                self._start_driver(op_id)
        return op.view()

    # ------------------------------------------------------------ snapshots
    def freeze(self, index: str, token: str, lease_s: float = FREEZE_LEASE_S) -> float:
        """A snapshot's (a reindex's) cut of `index` now: operations created from now on wait
        to be indexed until `thaw`; returns the cut's time. One holder of an index at a time.
        The hold lasts `lease_s` unless renewed (settled_before and held_after renew it): a
        holder that died (its replica killed) never leaves the index's writes held for good."""
        held = self._hold(index)
        if held is not None and held[0] != token:
            raise Conflict(f"index {index!r} is held by a snapshot or a reindex; retry when it ends")
        cut = held[1] if held is not None else time.time()
        self.frozen[index] = (token, cut, time.monotonic() + lease_s)
        return cut

    def thaw(self, index: str, token: str) -> None:
        if self.frozen.get(index, (None,))[0] == token:
            del self.frozen[index]

    def _hold(self, index: str) -> tuple[str, float, float] | None:
        held = self.frozen.get(index)
        if held is not None and time.monotonic() > held[2]:
            log.warning("the hold on index %s was not renewed for %.0fs: its writes go on", index, FREEZE_LEASE_S)
            del self.frozen[index]
            return None
        return held

    def _renew(self, index: str, token: str) -> tuple[str, float, float] | None:
        held = self._hold(index)
        if held is None or held[0] != token:
            return None
        self.frozen[index] = (token, held[1], time.monotonic() + FREEZE_LEASE_S)
        return self.frozen[index]

    def settled_before(self, index: str, token: str) -> tuple[bool, list[str]]:
        """(still frozen by `token`, ids of the index's operations created before the cut that
        are not finished yet): the snapshot waits until that list is empty."""
        held = self._renew(index, token)
        if held is None:
            return False, []
        waiting = [op_id for op_id in self._by_index.get(index, ())
                   if (op := self.ops.get(op_id)) is not None and op.created_at < held[1]
                   and op.status not in TERMINAL]
        return True, sorted(waiting)

    def held_after(self, index: str, token: str) -> tuple[bool, list[str]]:
        """(still frozen by `token`, ids of the index's operations created at or after the cut,
        in the order they were accepted): the writes a reindex replays on its destination."""
        held = self._renew(index, token)
        if held is None:
            return False, []
        ops = [op for op_id in self._by_index.get(index, ())
               if (op := self.ops.get(op_id)) is not None and op.created_at >= held[1]]
        return True, [op.operation_id for op in sorted(ops, key=lambda o: (o.created_at, o.operation_id))]

    def forget_index(self, index: str) -> None:
        self.watermarks.pop(index, None)

    def _oldest_unpersisted(self, index: str) -> float | None:
        """created_at of the oldest operation of `index` with unpersisted batches (active ones only)."""
        times = [self.ops[i].created_at for i in self._unpersisted_ops.get(index, ()) if i in self.ops]
        return min(times) if times else None

    def _export_gauges(self, index: str) -> None:
        """Soon, at most every GAUGE_PERIOD_S per index (computing the lag's age scans the
        index's active operations: not once per checkpoint)."""
        if index in self._gauges_due:
            return
        self._gauges_due.add(index)
        asyncio.get_running_loop().call_later(GAUGE_PERIOD_S, self._export_gauges_now, index)

    def _export_gauges_now(self, index: str) -> None:
        self._gauges_due.discard(index)
        oldest = self._oldest_unpersisted(index)
        self.metrics.gauge("in_flight", self._pending_by_index.get(index, 0), index=index)
        self.metrics.gauge("lag_batches", self._unpersisted_by_index.get(index, 0), index=index)
        self.metrics.gauge("lag_seconds", time.time() - oldest if oldest else 0.0, index=index)

    def in_flight(self) -> dict:
        """Per index: batches pending or indexed-but-not-persisted (for /stats)."""
        return {index: {"batches_pending": self._pending_by_index.get(index, 0),
                        "batches_unpersisted": self._unpersisted_by_index.get(index, 0),
                        "oldest_unpersisted_at": self._oldest_unpersisted(index)}
                for index in self._by_index}

    def indexes_to_drain(self) -> list[str]:
        """Indexes with batches pending or indexed-but-not-persisted: the only ones whose shards
        can hold changes for the persistence actor's next cycle (O(indexes with active work))."""
        unpersisted = {index for index, ops in self._unpersisted_ops.items() if ops}
        return sorted(unpersisted | {index for index, n in self._pending_by_index.items() if n > 0})

    def admission(self, index: str) -> "Admission":
        """What a bulk request is admitted by: batches waiting to be indexed, batches indexed
        but not yet persisted (backpressure on both), why the index's writes wait (a full
        disk) or None."""
        return Admission(self._pending_total, self._unpersisted_total, self.blocked.get(index))

    def pending_batches(self) -> int:
        """Batches accepted but not yet indexed, over all operations (backpressure): a counter."""
        return self._pending_total

    def memory_stats(self) -> dict:
        """What the tracker holds in memory (bounded by active work, not by history)."""
        return {"operations": len(self.ops), "drivers": len(self._drivers), "dirty": len(self._dirty),
                "waiters": len(self._waiters), "save_locks": len(self._save_locks),
                "counted": len(self._counts), "indexes": len(self._by_index),
                "batches_pending": self._pending_total,
                "batches_unpersisted": self._unpersisted_total, "evicted": self.evicted}


__all__ = ["Admission", "BatchState", "Operation", "OperationTracker", "OperationStore", "NoMetrics"]
