"""TrackerActor: the state of every bulk operation, checkpointed to MongoDB.

It also drives each operation: batches that are accepted (in the intake log)
but not indexed are sent to the worker pool, with bounded concurrency and
retries with exponential backoff. After a restart (kill -9, or the whole Ray
side restarted) it reloads its checkpoints and resumes every unfinished
operation from the intake log; shards ignore batches they already applied.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import ray

from raysearch import metrics
from raysearch.actors import registry
from raysearch.config import Settings
from raysearch.errors import MongoUnavailable
from raysearch.ops import book
from raysearch.storage.mongo import MongoStore, is_unavailable

log = logging.getLogger("raysearch.tracker")


@ray.remote
class TrackerActor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.mongo = MongoStore(settings.mongo_uri, settings.mongo_db)
        self.mongo.ensure_schema()
        self.ops: dict[str, dict] = {op["operation_id"]: op for op in self.mongo.load_operations()}
        self.watermarks: dict[str, dict[str, int]] = {}  # index -> shard -> persisted opstamp
        self._drivers: dict[str, asyncio.Task] = {}
        self._pool: asyncio.Queue | None = None
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._dirty: set[str] = set()  # operations changed but not yet checkpointed
        self._flusher: asyncio.Task | None = None
        self._intake_to_drop: dict[str, list[int]] = {}

    # ------------------------------------------------------------ driving
    def _ensure_started(self) -> None:
        """Create the worker pool and resume unfinished operations (first call after start)."""
        if self._pool is not None:
            return
        self._pool = asyncio.Queue()
        for handle in registry.workers(self.settings):
            self._pool.put_nowait(handle)
        for op in self.ops.values():
            if book.pending_batches(op):
                self._start_driver(op["operation_id"])

    def _start_driver(self, op_id: str) -> None:
        task = self._drivers.get(op_id)
        if task is None or task.done():
            self._drivers[op_id] = asyncio.get_running_loop().create_task(self._drive(op_id))

    async def _drive(self, op_id: str) -> None:
        op = self.ops[op_id]
        while pending := book.pending_batches(op):  # batches can become pending again (shard rebuilt)
            await asyncio.gather(*(self._run_batch(op, b) for b in pending))

    async def _run_batch(self, op: dict, batch: int) -> None:
        attempts = self.settings.index_attempts
        attempt, last_error = 0, None
        while attempt < attempts:
            worker = await self._pool.get()
            result = None
            try:
                result = await worker.index_batch.remote(op["index"], op["operation_id"], batch)
            except MongoUnavailable as exc:  # not the batch's fault: wait, do not use up an attempt
                last_error = exc
            except Exception as exc:  # worker or shard died...
                last_error = exc
                attempt += 1
                log.warning("batch %s:%d attempt %d failed: %s", op["operation_id"], batch, attempt, exc)
            finally:
                self._pool.put_nowait(worker)  # free the worker before any bookkeeping
            if result is not None:
                if book.batch_indexed(op, batch, result["opstamps"], result["indexed"], result["failed"]):
                    metrics.count("docs_indexed", result["indexed"], index=op["index"])
                    metrics.count("batches_indexed", 1, index=op["index"])
                    # Not waited for: losing this mark in a crash only re-runs the batch (idempotent).
                    await self._checkpoint(op, durable=False)
                return
            if attempt < attempts:
                delay = 4 if isinstance(last_error, MongoUnavailable) else 2 ** max(attempt - 1, 0)
                await asyncio.sleep(self.settings.backoff_base_s * delay)
        reason = f"indexing failed after {attempts} attempts: {type(last_error).__name__}: {last_error}"
        metrics.count("batches_failed", 1, index=op["index"])
        book.batch_failed(op, batch, reason[:2000], await self._batch_ids(op, batch))
        await self._checkpoint(op)

    async def _batch_ids(self, op: dict, batch: int) -> list[str]:
        from raysearch.index.batch import decode_payload

        try:
            raw = await asyncio.to_thread(self.mongo.get_batch, op["operation_id"], batch)
            docs, deletes = decode_payload(raw)[:2] if raw else ([], [])
            return [d["id"] for d in docs] + list(deletes)
        except Exception:
            return []

    async def _checkpoint(self, op: dict, durable: bool = True) -> None:
        """Update derived state and save the operation. `durable=False` leaves the save to
        the flusher (coalesced, every 0.2 s): for facts that are re-derived after a crash
        (indexed marks: batches re-run idempotently; persisted marks: watermarks are
        reported again)."""
        persisted = book.apply_watermarks(op, self.watermarks.get(op["index"], {}))
        if persisted:  # intake payloads are kept until their batch's persisted mark is saved
            self._intake_to_drop.setdefault(op["operation_id"], []).extend(persisted)
        was_terminal = op.get("_notified", False)
        before = op["status"]
        book.refresh_status(op, {})
        if op["status"] != before and op["status"] in book.TERMINAL_STATUSES:
            durable = True  # a final status is checkpointed at once, not coalesced
        if durable:
            await self._save(op)
        else:
            self._dirty.add(op["operation_id"])
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        if op["status"] in book.TERMINAL_STATUSES or op["status"] == "persisting":
            for event in self._waiters.pop(op["operation_id"], []):
                event.set()
        self._export_gauges(op["index"])
        if op["status"] in book.TERMINAL_STATUSES and op.get("webhook") and not was_terminal:
            op["_notified"] = True
            asyncio.get_running_loop().create_task(self._notify(op))

    async def _flush_loop(self) -> None:
        while self._dirty:
            await asyncio.sleep(0.2)
            for op_id in list(self._dirty):
                self._dirty.discard(op_id)
                await self._save(self.ops[op_id])

    async def _save(self, op: dict) -> None:
        """Write the checkpoint, then drop intake payloads of persisted batches; waits out a
        MongoDB outage (nothing is acknowledged before it is saved)."""
        op_id = op["operation_id"]
        delay = self.settings.backoff_base_s
        while True:
            try:
                await asyncio.to_thread(self.mongo.save_operation, op)
                drop = self._intake_to_drop.pop(op_id, [])
                if drop:
                    await asyncio.to_thread(self.mongo.delete_batches, op_id, drop)
                return
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                log.warning("checkpoint of %s waits for MongoDB: %s", op_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _notify(self, op: dict) -> None:
        """POST the final operation to its webhook, retrying with exponential backoff.

        The URL is checked again against the current settings (it was checked at intake, but an
        operation resumed from a checkpoint may predate them); redirects are not followed."""
        import httpx

        from raysearch.errors import InvalidRequest
        from raysearch.serve.validation import check_webhook

        try:
            check_webhook(op["webhook"], self.settings.webhook_allowed_hosts)
        except InvalidRequest as exc:
            log.warning("webhook of %s not sent: %s", op["operation_id"], exc.reason)
            return
        body = book.public_view(op)
        async with httpx.AsyncClient(timeout=10, follow_redirects=False, trust_env=False) as client:
            for attempt in range(self.settings.webhook_attempts):
                try:
                    r = await client.post(op["webhook"], json=body)
                    if r.status_code < 500:
                        return
                except httpx.HTTPError as exc:
                    log.warning("webhook %s failed: %s", op["webhook"], exc)
                await asyncio.sleep(self.settings.backoff_base_s * 2**attempt)

    # ------------------------------------------------------------ API
    async def create(self, op_id: str, index: str, batch_docs: list[int], errors: list[dict],
                     webhook: str | None = None, kind: str = "bulk") -> dict:
        """Register an operation whose batches are already in the intake log, and start it."""
        self._ensure_started()
        if op_id not in self.ops:
            op = book.new_operation(op_id, index, batch_docs, errors, webhook, kind)
            self.ops[op_id] = op
            await self._checkpoint(op)
        self._start_driver(op_id)
        return book.public_view(self.ops[op_id])

    async def wait_indexed(self, op_id: str, timeout_s: float = 60) -> dict | None:
        """Wait until every batch of the operation is indexed or failed (PUT/DELETE of one document)."""
        self._ensure_started()
        op = self.ops.get(op_id)
        if op is None:
            return None
        if book.pending_batches(op):
            event = asyncio.Event()
            self._waiters.setdefault(op_id, []).append(event)
            try:
                await asyncio.wait_for(event.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
        return book.public_view(op)

    async def shard_persisted(self, index: str, shard: int, upto: int) -> None:
        self._ensure_started()
        marks = self.watermarks.setdefault(index, {})
        if marks.get(str(shard), -1) >= upto:
            return
        marks[str(shard)] = upto
        for op in self.ops.values():
            if op["index"] == index and any(s == book.INDEXED for s in op["batch_state"]):
                await self._checkpoint(op, durable=False)

    async def shard_started_empty(self, index: str, shard: int) -> None:
        """A shard came up without its RocksDB (deleted, or its node lost) and was rebuilt
        from MongoDB: batches indexed there but not yet persisted are gone from it, so
        they run again from the intake log (other shards skip them: idempotent)."""
        self._ensure_started()
        for op in self.ops.values():
            if op["index"] != index:
                continue
            redo = book.unpersisted_on_shard(op, str(shard))
            if redo:
                log.warning("shard %s:%d rebuilt: re-running %d batches of %s", index, shard, len(redo),
                            op["operation_id"])
                await self._checkpoint(op)
                self._start_driver(op["operation_id"])

    async def get(self, op_id: str) -> dict | None:
        self._ensure_started()
        op = self.ops.get(op_id)
        return book.public_view(op) if op else None

    async def list(self, index: str | None = None, limit: int = 100) -> list[dict]:
        self._ensure_started()
        ops = [op for op in self.ops.values() if index is None or op["index"] == index]
        ops.sort(key=lambda op: op["created_at"], reverse=True)
        return [book.public_view(op) for op in ops[:limit]]

    async def retry(self, op_id: str) -> dict | None:
        self._ensure_started()
        op = self.ops.get(op_id)
        if op is None:
            return None
        if book.reset_failed(op):
            await self._checkpoint(op)
            self._start_driver(op_id)
        return book.public_view(op)

    async def forget_index(self, index: str) -> None:
        self.watermarks.pop(index, None)

    def _export_gauges(self, index: str) -> None:
        pending = unpersisted = 0
        oldest = None
        for op in self.ops.values():
            if op["index"] != index or op["status"] in book.TERMINAL_STATUSES:
                continue
            pending += sum(1 for s in op["batch_state"] if s == book.PENDING)
            n = sum(1 for s in op["batch_state"] if s == book.INDEXED)
            unpersisted += n
            if n:
                oldest = min(oldest or op["created_at"], op["created_at"])
        metrics.gauge("in_flight", pending, index=index)
        metrics.gauge("lag_batches", unpersisted, index=index)
        metrics.gauge("lag_seconds", time.time() - oldest if oldest else 0.0, index=index)

    async def in_flight(self) -> dict:
        """Per index: batches pending or indexed-but-not-persisted (for /stats)."""
        out: dict[str, dict] = {}
        for op in self.ops.values():
            if op["status"] in book.TERMINAL_STATUSES:
                continue
            entry = out.setdefault(op["index"], {"batches_pending": 0, "batches_unpersisted": 0, "oldest_unpersisted_at": None})
            entry["batches_pending"] += sum(1 for s in op["batch_state"] if s == book.PENDING)
            unpersisted = sum(1 for s in op["batch_state"] if s == book.INDEXED)
            entry["batches_unpersisted"] += unpersisted
            if unpersisted:
                oldest = entry["oldest_unpersisted_at"]
                entry["oldest_unpersisted_at"] = min(oldest or op["created_at"], op["created_at"])
        return out

    async def pending_batches(self) -> int:
        """Batches accepted but not yet indexed, over all operations (backpressure)."""
        return sum(
            sum(1 for s in op["batch_state"] if s == book.PENDING)
            for op in self.ops.values()
            if op["status"] == "indexing"
        )

    async def service_settings(self) -> dict:
        """The service's settings, for in-cluster clients (raysearch.connect)."""
        return self.settings.model_dump()

    async def pid(self) -> int:
        return os.getpid()

    async def ping(self) -> bool:
        self._ensure_started()
        return True
