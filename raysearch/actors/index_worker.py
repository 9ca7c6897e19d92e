"""IndexWorker: stateless; analyses one batch and writes each shard its part.

Twelve of them are started with the service (the design's pool), and on a small machine
most stay idle (ops/worker_pool.py hands batches to the last worker freed). So a worker
loads what indexing needs -- numpy, pymongo, the analyzer, the shard client -- at its
first batch, not when it starts: an idle worker then holds little more than Ray's own
(python -X importtime: the eager imports were 365 modules, ~41 MB of RSS per process).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import ray

from raysearch.actors import gc_tuning, names
from raysearch.actors.traffic import Traffic

if TYPE_CHECKING:
    from raysearch.config import Settings


@ray.remote(concurrency_groups=names.CONTROL_GROUPS)  # ping, pid: see names.SERIAL
class IndexWorker:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._mongo = None  # made at the first batch (see the module's docstring)
        # index -> (analyzer, shard handles, embedder, whether `_all` is derived)
        self._indexes: dict[str, tuple] = {}
        self._traffic = Traffic()  # calls, and bytes sent to each shard (actors/traffic.py)
        gc_tuning.collect_rarely()

    @property
    def mongo(self):
        if self._mongo is None:
            from raysearch.storage.mongo import MongoStore

            self._mongo = MongoStore(self.settings.mongo_uri, self.settings.mongo_db)
        return self._mongo

    def _index(self, index: str):
        cached = self._indexes.get(index)
        if cached is None:
            from raysearch import indexmeta
            from raysearch.actors.shard_store import shards as shard_handles

            meta = self.mongo.get_index_meta(index)
            if meta is None:
                raise RuntimeError(f"index {index!r} has no settings in MongoDB")
            if meta.get("deleting"):
                raise RuntimeError(f"index {index!r} is being deleted")
            settings, analyzer, shards = indexmeta.parse(meta)  # CorruptIndex naming it: this batch fails, not others
            cached = self._indexes[index] = (analyzer, shard_handles(self.settings, index, shards), settings.embedder,
                                             settings.all_field == "derived")
        return cached

    def index_batch(self, index: str, op_id: str, batch: int) -> dict:
        """Index batch `batch` of operation `op_id` from the intake log.

        Idempotent: shards skip a batch key they already applied and return its opstamp.
        """
        from raysearch.analysis import embedding
        from raysearch.index.batch import decode_payload, split_batch

        self._traffic.call("index_batch")
        raw = self.mongo.get_batch(op_id, batch)  # MongoUnavailable: the tracker waits, no attempt used
        self._index(index)
        if raw is None:
            raise RuntimeError(f"batch {op_id}:{batch} is not in the intake log")
        docs, deletes, types, vectors = decode_payload(raw)
        analyzer, shards, embedder, derived_all = self._index(index)
        if embedder is not None and embedder.target in vectors:  # the whole batch in one call
            embedding.fill_vectors(docs, embedder.fields, embedder.target)
        per_shard, indexed, failed = split_batch(docs, deletes, len(shards), analyzer, types, vectors, derived_all)
        batch_key = f"{op_id}:{batch}"
        refs = {n: shards[n].apply.remote(batch_key, part) for n, part in per_shard.items()}
        for n, part in per_shard.items():
            self._traffic.send(names.shard_name(index, n), part.payload_bytes())
        try:
            opstamps = dict(zip(refs, ray.get(list(refs.values()), timeout=300)))
        except Exception:
            # The handles may be of shard actors killed for good (the index was deleted and
            # created again): the next attempt resolves the index and its shards anew.
            self._indexes.pop(index, None)
            raise
        return {"opstamps": opstamps, "indexed": indexed, "failed": failed}

    def load_libraries(self) -> bool:
        """Import now what the first batch would (see the module's docstring): for a benchmark
        that must not count a worker's imports (~1 s of CPU) as indexing."""
        from raysearch.analysis import embedding  # noqa: F401
        from raysearch.index import batch  # noqa: F401
        from raysearch.storage import mongo  # noqa: F401

        return True

    def forget_index(self, index: str) -> None:
        self._indexes.pop(index, None)

    @ray.method(concurrency_group="control")
    def traffic(self) -> dict:
        return self._traffic.snapshot()

    @ray.method(concurrency_group="control")
    def pid(self) -> int:
        return os.getpid()

    @ray.method(concurrency_group="control")
    def ping(self) -> bool:
        return True


def worker_options(i: int) -> dict:
    return names.options(names.worker_name(i), max_task_retries=0, scheduling_strategy="SPREAD", **names.SERIAL)


def worker(settings: Settings, i: int):
    """Get or create IndexWorker i."""
    return IndexWorker.options(**worker_options(i)).remote(settings)


def workers(settings: Settings) -> list:
    return [worker(settings, i) for i in range(settings.workers)]
