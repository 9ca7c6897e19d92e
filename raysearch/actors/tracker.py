"""TrackerActor: the state of every bulk operation, checkpointed to MongoDB.

A thin adapter: the logic is ops/tracker.py's OperationTracker, given MongoDB as its
store, the IndexWorker pool as its dispatcher, webhooks and Ray's metrics. Detached and
restarted by Ray after a crash; it then reloads its active checkpoints and resumes.
"""

from __future__ import annotations

import os
from typing import Callable

import ray

from raysearch import metrics
from raysearch.actors import names
from raysearch.actors.index_worker import workers as worker_handles
from raysearch.actors.traffic import Traffic
from raysearch.config import Settings
from raysearch.ops.tracker import OperationTracker
from raysearch.ops.worker_pool import WorkerPool
from raysearch.ops.webhooks import webhook_sender
from raysearch.storage.mongo import MongoStore


def _cluster_limit(settings: Settings) -> Callable[[int], int]:
    """Batches analysed at once (ops/worker_pool.py): the setting, else twice the cluster's
    CPUs as Ray counts them now."""
    def limit(pool_size: int) -> int:
        if settings.index_concurrency is not None:
            return settings.index_concurrency
        try:
            cpus = ray.cluster_resources().get("CPU", 1)
        except Exception:  # the GCS busy or away: use the whole pool rather than stall
            return pool_size
        return 2 * max(1, int(cpus))
    return limit


def worker_pool(settings: Settings) -> WorkerPool:
    async def call(worker, index: str, op_id: str, batch: int) -> dict:
        return await worker.index_batch.remote(index, op_id, batch)

    return WorkerPool(lambda: worker_handles(settings), call, _cluster_limit(settings))


@ray.remote
class TrackerActor:
    def __init__(self, settings: Settings):
        self.settings = settings
        mongo = MongoStore(settings.mongo_uri, settings.mongo_db)
        mongo.ensure_schema()
        mongo.ensure_operations_schema(settings.operation_retention_s)
        self._traffic = Traffic()  # the calls it receives (actors/traffic.py)
        self.core = OperationTracker(settings, mongo, worker_pool(settings).run, webhook_sender(settings), metrics)

    async def create(self, op_id: str, index: str, batch_docs: list[int], errors: list[dict],
                     webhook: str | None = None, kind: str = "bulk", may_exist: bool = True) -> dict:
        self._traffic.call("create")
        return await self.core.create(op_id, index, batch_docs, errors, webhook, kind, may_exist)

    async def wait_indexed(self, op_id: str, timeout_s: float = 60) -> dict | None:
        self._traffic.call("wait_indexed")
        return await self.core.wait_indexed(op_id, timeout_s)

    async def shards_persisted(self, reports: dict[str, dict[int, int]]) -> None:
        self._traffic.call("shards_persisted")
        await self.core.shards_persisted(reports)

    async def shard_started_empty(self, index: str, shard: int) -> None:
        self._traffic.call("shard_started_empty")
        await self.core.shard_started_empty(index, shard)

    async def get(self, op_id: str) -> dict | None:
        self._traffic.call("get")
        return await self.core.get(op_id)

    async def list(self, index: str | None = None, limit: int = 100, after: str | None = None) -> dict:
        self._traffic.call("list")
        return await self.core.list(index, limit, after)

    async def retry(self, op_id: str) -> dict | None:
        self._traffic.call("retry")
        return await self.core.retry(op_id)

    async def sweep(self, retention_s: float | None = None) -> int:
        return await self.core.sweep(retention_s)

    async def forget_index(self, index: str) -> None:
        self.core.forget_index(index)

    async def in_flight(self) -> dict:
        self._traffic.call("in_flight")
        return self.core.in_flight()

    async def indexes_to_drain(self) -> list[str]:
        self._traffic.call("indexes_to_drain")
        return self.core.indexes_to_drain()

    async def pending_batches(self) -> int:
        self._traffic.call("pending_batches")
        return self.core.pending_batches()

    async def admission(self, index: str) -> tuple[int, str | None]:
        self._traffic.call("admission")
        return self.core.admission(index)

    async def freeze(self, index: str, token: str) -> float:
        return self.core.freeze(index, token)

    async def thaw(self, index: str, token: str) -> None:
        self.core.thaw(index, token)

    async def settled_before(self, index: str, token: str) -> tuple[bool, list[str]]:
        return self.core.settled_before(index, token)

    async def held_after(self, index: str, token: str) -> tuple[bool, list[str]]:
        return self.core.held_after(index, token)

    async def memory_stats(self) -> dict:
        return self.core.memory_stats()

    async def service_settings(self) -> dict:
        """The service's settings, for in-cluster clients (raysearch.connect)."""
        return self.settings.model_dump()

    async def traffic(self) -> dict:
        return self._traffic.snapshot()

    async def pid(self) -> int:
        return os.getpid()

    async def ping(self) -> bool:
        self.core.start()
        return True


def tracker(settings: Settings):
    """Get or create the TrackerActor."""
    return TrackerActor.options(**names.options(names.TRACKER, max_task_retries=-1, max_concurrency=64)).remote(settings)
