"""IndexWorker: stateless; analyses one batch and writes each shard its part."""

from __future__ import annotations

import os

import ray

from raysearch import indexmeta
from raysearch.actors import gc_tuning, names
from raysearch.actors.shard_store import shards as shard_handles
from raysearch.analysis import embedding
from raysearch.analysis.analyzer import Analyzer
from raysearch.config import Settings
from raysearch.index.batch import decode_payload, split_batch
from raysearch.storage.mongo import MongoStore


@ray.remote(concurrency_groups=names.CONTROL_GROUPS)  # ping, pid: see names.SERIAL
class IndexWorker:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.mongo = MongoStore(settings.mongo_uri, settings.mongo_db)
        # index -> (analyzer, shard handles, embedder, whether `_all` is derived)
        self._indexes: dict[str, tuple[Analyzer, list, object, bool]] = {}
        gc_tuning.collect_rarely()

    def _index(self, index: str):
        cached = self._indexes.get(index)
        if cached is None:
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
        try:
            opstamps = dict(zip(refs, ray.get(list(refs.values()), timeout=300)))
        except Exception:
            # The handles may be of shard actors killed for good (the index was deleted and
            # created again): the next attempt resolves the index and its shards anew.
            self._indexes.pop(index, None)
            raise
        return {"opstamps": opstamps, "indexed": indexed, "failed": failed}

    def forget_index(self, index: str) -> None:
        self._indexes.pop(index, None)

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
