"""ShardStore: the only writer of one RocksDB shard; serves that shard's search."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time

import ray

from raysearch import metrics
from raysearch.actors import gc_tuning, names
from raysearch.actors.traffic import Traffic
from raysearch.actors.wire import WireServer
from raysearch.analysis.analyzer import ALL_FIELD
from raysearch.config import Settings
from raysearch.errors import MongoUnavailable, ShardUnavailable, StorageFull
from raysearch.retry import Backoff, wait_out
from raysearch.index import keys as K
from raysearch.index.compaction import replay_into
from raysearch.index.encoding import decode_entries
from raysearch.index.verification import compare_sorted
from raysearch.index.ann import AnnIndex
from raysearch.index.batch import ShardBatch
from raysearch.index.shard_index import ShardIndex
from raysearch.search.knn import KnnQuery, shard_knn
from raysearch.search.plan import QueryPlan
from raysearch.search.shard_side import shard_dictionary, shard_hybrid, shard_search, shard_stats
from raysearch.storage.chunk_store import compress_chunks
from raysearch.storage.gate import ReadGate
from raysearch.storage.mongo import ChunksChanged, MongoStore
from raysearch.storage.rocks import RocksKV

log = logging.getLogger(__name__)
# The read methods of searches and document GETs, served on the wire as well as through Ray.
WIRE_METHODS = frozenset({"stats", "search", "dictionary", "knn", "hybrid", "get_documents", "fields", "get_document", "info"})
# Once idle, at most this long a round (one a second) reading again the lists queries had
# cached and writes made stale (ShardIndex.rewarm): short, as searches share the GIL with it
REWARM_BUDGET_S = 0.1
DISK_ROOM_BYTES = 64 << 20  # free space a store reopened after a full disk wants first (memtables, logs)


def _no_space(exc: BaseException) -> bool:
    """A RocksDB write that failed for want of disk space (ENOSPC, or the error it keeps after one)."""
    text = str(exc)
    return "No space left on device" in text or "Writer has previous error" in text


def shard_path(settings: Settings, index: str, shard: int) -> str:
    root = settings.data_dir
    if settings.node_local_dirs:  # a node's disk goes away with the node
        root = os.path.join(root, "node-" + ray.get_runtime_context().get_node_id()[:12])
    return os.path.join(root, "shards", index, str(shard))


@ray.remote
class ShardStore:
    def __init__(self, settings: Settings, index: str, shard: int):
        self.settings, self.index_name, self.shard = settings, index, shard
        self.path = shard_path(settings, index, shard)
        self._write_lock = threading.Lock()
        self._purges_held = 0  # verifies running: the idle loop purges nothing meanwhile
        # Reads run on up to 16 threads without the write lock; rebuild and drop close the
        # store only once the reads inside have left, and turn new ones away meanwhile.
        self._gate = ReadGate(lambda because: ShardUnavailable(f"shard {index}:{shard} {because}; retry"))
        self.kv = RocksKV(self.path)
        self.index = ShardIndex(self.kv, settings.posting_cache_postings)
        self.restored = False
        self._last_write = time.monotonic()
        self._closed = False
        self._disk_full: str | None = None  # the write error while the disk under the store is full
        self._traffic = Traffic()  # calls, bytes of batches in and of chunk payloads out (actors/traffic.py)
        self._rewarmed = 0  # lists read again into the posting cache once idle (ShardIndex.rewarm)
        if self.index.is_empty():
            self._restore_from_mongo()
            # Whatever this shard had applied but not persisted is gone: the tracker re-runs it.
            tracker = names.find(names.TRACKER)
            if tracker is not None:
                tracker.shard_started_empty.remote(index, shard)
        # vector field -> similarity its kNN queries use: the fields worth an ANN graph
        self._knn_fields: dict[str, str] = {}
        self._ann_saved: dict[str, int] = {}  # field -> keys in its graph when last saved
        self._load_ann()
        gc_tuning.collect_rarely()
        gc_tuning.freeze_loaded_state()  # the statistics just loaded or restored
        threading.Thread(target=self._snapshot_loop, name="shard-snapshot", daemon=True).start()
        # The read calls of searches, beside Ray (actors/wire.py): the same methods, same gate.
        self._wire = WireServer(self._wire_call, WIRE_METHODS, ray.util.get_node_ip_address())

    def _wire_call(self, method: str, args: tuple):
        self._traffic.call(method)
        return getattr(self, method)(*args)

    def wire_address(self) -> tuple[str, int, bytes]:
        """(host, port, token) of this process's wire server (actors/wire.py)."""
        return (*self._wire.address, self._wire.token)

    # ---------------------------------------------------------- snapshot
    def _snapshot_loop(self) -> None:
        """Snapshot the derived state once the shard has been idle for a moment, so that a
        restart opens it without scanning every document (ShardIndex.write_snapshot)."""
        idle = self.settings.snapshot_idle_s
        while not self._closed:
            time.sleep(min(idle, 1.0))
            try:
                self._purge_while_idle()
            except ShardUnavailable:
                pass  # rebuilt or dropped meanwhile
            except Exception as exc:  # searches skip dead postings anyway; the next round tries again
                if not self._closed:
                    log.warning("shard %s/%s: purge of dead postings failed: %s", self.index_name, self.shard, exc)
            try:
                index = self.index
                if index.snapshot_opstamp != index.last_opstamp and time.monotonic() - self._last_write >= idle:
                    self.snapshot()
            except Exception as exc:  # the next round tries again; a restart without one only scans
                if not self._closed:
                    log.warning("shard %s/%s: snapshot failed: %s", self.index_name, self.shard, exc)
            try:
                if time.monotonic() - self._last_write >= idle:
                    with self._gate.reading():
                        self._rewarmed += self.index.rewarm(REWARM_BUDGET_S)
            except ShardUnavailable:
                pass  # rebuilt or dropped meanwhile
            except Exception as exc:  # a cold list is only slower to read
                if not self._closed:
                    log.warning("shard %s/%s: rewarming the posting cache failed: %s", self.index_name, self.shard, exc)
            try:
                self._maintain_ann()
            except ShardUnavailable:
                pass  # rebuilt or dropped meanwhile
            except Exception as exc:  # searches stay exact meanwhile; the next round tries again
                if not self._closed:
                    log.warning("shard %s/%s: ANN maintenance failed: %s", self.index_name, self.shard, exc)

    # --------------------------------------------------------------- ANN
    def _ann_folder(self) -> str:
        return self.path + ".ann"

    def _load_ann(self) -> None:
        """The saved ANN graphs of this very store (index/ann.py), so a restart does not build them."""
        for field, ann in AnnIndex.load_all(self._ann_folder(), self.index.store_id).items():
            column = self.index.vectors.column(field)
            if column is not None and column.dims == ann.dims:
                column.ann = ann
                self._knn_fields[field] = ann.similarity
                self._ann_saved[field] = ann.keys

    def _maintain_ann(self) -> None:
        """Grow each searched vector field's graph a step while the shard is idle, or while
        writes go on once the rows it does not cover (searched exactly) pile up; save it once
        it has caught up and the shard is idle. Building a graph costs ~0.5 ms a 256-d
        vector: during a bulk it waits, so indexing keeps the cores."""
        idle = time.monotonic() - self._last_write >= self.settings.snapshot_idle_s
        for field, similarity in list(self._knn_fields.items()):
            with self._gate.reading():
                index = self.index
                column = index.vectors.column(field)
                if column is None:
                    continue
                behind = len(index.stats.doc_ids) - (column.ann.covered if column.ann is not None else 0)
                if not idle and behind < 4 * self.settings.ann_min_vectors:
                    continue
                changed = index.extend_ann(field, similarity, self.settings.ann_min_vectors, budget=8192)
                ann = column.ann
                if (not changed and ann is not None and idle and ann.covered >= len(index.stats.doc_ids)
                        and self._ann_saved.get(field) != ann.keys):
                    ann.save(self._ann_folder(), field, index.store_id)
                    self._ann_saved[field] = ann.keys

    def _purge_while_idle(self, batches: int = 16) -> None:
        """Purge dead postings batch by batch while no apply comes (ShardIndex.purge): the
        write lock is taken per batch, so an apply waits for one purge at most."""
        for _ in range(batches):
            if self._purges_held or time.monotonic() - self._last_write < self.settings.snapshot_idle_s:
                return
            with self._write_lock:
                if self._closed or self._gate.is_shut or self._disk_full is not None:
                    return
                if not self.index.purge():
                    return

    def snapshot(self) -> int:
        """Write the snapshot now (also before a planned stop); returns its opstamp."""
        with self._write_lock:
            if self._closed:
                return -1
            return self.index.write_snapshot()

    def _restore_from_mongo(self) -> None:
        """A shard whose RocksDB is gone (deleted, or its node lost) comes back from MongoDB alone."""
        mongo = MongoStore(self.settings.mongo_uri, self.settings.mongo_db)
        try:
            # cannot know whether there is something to restore until MongoDB answers
            has_chunks = wait_out(lambda: mongo.has_chunks(self.index_name, self.shard),
                                  lambda exc: isinstance(exc, MongoUnavailable),
                                  Backoff(self.settings.backoff_base_s), log, "restore of a shard")
            if has_chunks:
                def entries():
                    for blob in mongo.iter_chunks(self.index_name, self.shard):
                        yield from decode_entries(blob)

                for attempt in range(5):
                    try:
                        self.index.restore(entries())
                        break
                    except ChunksChanged:  # compacted while read: start again from an empty store
                        if attempt == 4:
                            raise
                        self._reset_store()
                self.restored = True
        finally:
            mongo.close()

    # ------------------------------------------------------------ writes
    def apply(self, batch_key: str, batch: ShardBatch) -> int:
        self._traffic.call("apply")
        self._traffic.receive("index workers", batch.payload_bytes())
        with self._write_lock:
            if self._closed:
                raise ShardUnavailable(f"shard {self.index_name}:{self.shard} was dropped (its index was deleted)")
            self._last_write = time.monotonic()
            if self._disk_full is not None:
                self._reopen_after_full_disk()
            try:
                return self.index.apply(batch_key, batch)
            except Exception as exc:
                self._raise_if_disk_full(exc)
                raise

    def _raise_if_disk_full(self, exc: Exception) -> None:
        """A write that found no space: remember it (RocksDB refuses every write after this
        until it is reopened; reads go on) and raise StorageFull instead."""
        if _no_space(exc):
            self._disk_full = str(exc)
            raise StorageFull(f"shard {self.index_name}:{self.shard}: the disk under its RocksDB is full "
                              f"({self.path}): {exc}") from None

    def _reopen_after_full_disk(self) -> None:
        """Once there is room again, reopen the store (RocksDB keeps a write error until then);
        while there is not, answer StorageFull at once and leave the open store to the reads."""
        free = self.kv.free_bytes()
        if free < DISK_ROOM_BYTES:
            raise StorageFull(f"shard {self.index_name}:{self.shard}: the disk under its RocksDB is still full "
                              f"({free:,} bytes free at {self.path}; {self._disk_full})")
        with self._gate.shut("is reopening its store after a full disk"):
            try:
                self.kv.close()
            except Exception:  # noqa: BLE001 - it reports the earlier write error; the handle is closed
                pass
            self.kv = RocksKV(self.path)
            self.index = ShardIndex(self.kv, self.settings.posting_cache_postings)
            self._load_ann()
        log.warning("shard %s/%s: reopened after a full disk", self.index_name, self.shard)
        self._disk_full = None

    # Draining does not take the write lock: batches are atomic in RocksDB, log entries
    # are read before the values they name, and the drain deletes only its own entries.
    def collect_changes(self, limit: int):
        """(chunk payloads, compressed, log keys, bytes of earlier values they supersede) of
        the oldest changes, read from RocksDB."""
        self._traffic.call("collect_changes")
        with self._gate.reading():
            chunks, log_keys = self.index.collect_chunks(limit, self.settings.chunk_postings)
            chunks = compress_chunks(chunks)  # here, in the shard's process: the writer only moves bytes
            self._traffic.send(names.PERSISTENCE, sum(len(chunk[2]) for chunk in chunks))
            return chunks, log_keys, self.index.garbage_of(log_keys)

    def ack_changes(self, log_keys: list[bytes]) -> int:
        """Clear drained change-log entries; returns the persisted watermark (opstamp)."""
        self._traffic.call("ack_changes")
        if self._disk_full is not None:
            with self._write_lock:
                if self._disk_full is not None:
                    self._reopen_after_full_disk()
        try:
            with self._gate.reading():
                self.index.ack_changes(log_keys)
        except Exception as exc:
            self._raise_if_disk_full(exc)
            raise
        upto = self.index.persisted_upto()
        pending = self.index.pending_changes()
        metrics.gauge("dirty", pending, index=self.index_name, shard=str(self.shard))
        return upto

    def _reset_store(self) -> None:
        """An empty RocksDB in place of this shard's."""
        self.kv.close()
        shutil.rmtree(self.path, ignore_errors=True)
        shutil.rmtree(self._ann_folder(), ignore_errors=True)
        self._ann_saved = {}
        self.kv = RocksKV(self.path)
        self.index = ShardIndex(self.kv, self.settings.posting_cache_postings)

    def rebuild(self) -> dict:
        """Throw away this shard's RocksDB and rebuild it from MongoDB alone (`raysearch restore`)."""
        with self._write_lock, self._gate.shut("is being rebuilt from MongoDB (restore)"):
            self._reset_store()
            self.restored = False
            self._restore_from_mongo()
        tracker = names.find(names.TRACKER)
        if tracker is not None:
            ray.get(tracker.shard_started_empty.remote(self.index_name, self.shard), timeout=120)
        return self.info()

    def drop(self) -> None:
        """Delete this shard's data (DELETE /indexes/{index}); the actor is killed next.
        Idempotent: a retried drop (the actor is killed right after) finds nothing to do."""
        if self._closed:
            return
        with self._write_lock, self._gate.shut("was dropped (its index was deleted)", reopen=False):
            if self._closed:
                return
            self._closed = True
            self.kv.close()
            shutil.rmtree(self.path, ignore_errors=True)
            shutil.rmtree(self._ann_folder(), ignore_errors=True)

    # ------------------------------------------------------------- reads
    # Hot read paths: no per-call task events for the dashboard (measured 7-10 % of a call).
    @ray.method(enable_task_events=False)
    def stats(self, fields: list[str], pairs: list, prefixes: list, max_expansions: int, fuzzy: list = ()) -> dict:
        """This shard's part of a search's statistics round (search/shard_side.py)."""
        with self._gate.reading():
            return shard_stats(self.index, fields, pairs, prefixes, max_expansions, fuzzy)

    @ray.method(enable_task_events=False)
    def dictionary(self, max_terms: int) -> dict:
        """This shard's whole term dictionary, for the ingress's statistics cache (search/shard_side.py)."""
        with self._gate.reading():
            return shard_dictionary(self.index, max_terms)

    @ray.method(enable_task_events=False)
    def search(self, plan: QueryPlan, k: int) -> dict:
        """This shard's query phase (search/shard_side.py)."""
        with self._gate.reading():
            return shard_search(self.index, self.shard, plan, k)

    @ray.method(enable_task_events=False)
    def knn(self, query: KnnQuery) -> list:
        """This shard's top k nearest neighbours (search/knn.py)."""
        self._knn_fields.setdefault(query.field, query.similarity)  # worth a graph (_maintain_ann)
        with self._gate.reading():
            return shard_knn(self.index, query, self.settings.ann_min_vectors)

    @ray.method(enable_task_events=False)
    def hybrid(self, plan: QueryPlan, window: int, query: KnnQuery, fetch_top: int = 0) -> dict:
        """A hybrid search's kNN and text query phases in one call (search/shard_side.py)."""
        self._knn_fields.setdefault(query.field, query.similarity)
        with self._gate.reading():
            return shard_hybrid(self.index, self.shard, plan, window, query, fetch_top, self.settings.ann_min_vectors)

    def get_document(self, doc_id: str) -> bytes | None:
        with self._gate.reading():
            return self.index.get_document(doc_id)

    @ray.method(enable_task_events=False)
    def get_documents(self, doc_ids: list[str]) -> list[bytes | None]:
        """Fetch phase: the stored documents of one page's hits on this shard."""
        with self._gate.reading():
            return self.index.get_documents(doc_ids)

    def info(self) -> dict:
        """Counts kept as they change, and the size on disk: O(1) in the shard's size. In
        memory only (no RocksDB read), so it answers while the store is shut."""
        dead, held = self.index.dead_share()
        return {
            "available": not self._gate.is_shut,
            "documents": self.index.doc_count(),
            "terms": self.index.term_count(ALL_FIELD),
            "bytes_on_disk": _dir_bytes(self.path),
            "pending_changes": self.index.pending_changes(),
            "dead_documents_held": dead,
            "documents_held": held,
            "last_opstamp": self.index.last_opstamp,
            "snapshot_opstamp": self.index.snapshot_opstamp,
            "opened_from": self.index.opened_from,
            "restored": self.restored,
            "posting_cache": {"lists": len(self.index.cache), "postings": self.index.cache.size,
                              "stale_to_rewarm": self.index.cache.dropped_count(), "rewarmed": self._rewarmed},
            "vectors": self.index.vector_columns(),
        }

    def documents_page(self, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        """Stored documents in id order, a page at a time (app/reindex.py)."""
        with self._gate.reading():
            return self.index.documents_page(after, limit)

    @ray.method(enable_task_events=False)
    def fields(self) -> list[str]:
        with self._gate.reading():
            return self.index.fields()

    def terms(self, field: str) -> list[str]:
        with self._gate.reading():
            return self.index.terms(field)

    def verify(self, max_mismatches: int = 1000) -> dict:
        """Compare this shard's mirrored entries with MongoDB's, key by key, in bounded memory:
        MongoDB's chunks are replayed into a scratch RocksDB beside the shard, then both stores
        are walked in key order (verification.compare_sorted). Nothing crosses Ray but the result."""
        with self._gate.reading():
            # No purge of dead postings may land between the caller's flush and the compare
            # (an idle shard purges by writes of its own): held off for the verify, and a
            # purge already written but not yet drained answers "pending" -- the caller
            # flushes again and asks once more.
            self._purges_held += 1
            try:
                with self._write_lock:
                    pending = self.index.pending_changes()
                if pending:
                    return {"pending": pending, "entries": 0, "terms": 0, "mismatches": [], "seconds": 0.0}
                return self._verify(max_mismatches)
            finally:
                self._purges_held -= 1

    def _verify(self, max_mismatches: int) -> dict:
        scratch_path = self.path.rstrip("/") + ".verify"
        mongo = MongoStore(self.settings.mongo_uri, self.settings.mongo_db)
        started = time.monotonic()
        try:
            for attempt in range(5):
                shutil.rmtree(scratch_path, ignore_errors=True)
                scratch = RocksKV(scratch_path, sync=False)
                try:
                    replay_into(scratch, mongo.iter_chunks(self.index_name, self.shard))
                    break
                except ChunksChanged:  # compacted while read: read again
                    scratch.close()
                    if attempt == 4:
                        raise
            try:
                result = compare_sorted(self.kv.scan(b"", K.INTERNAL), scratch.scan(b"", K.INTERNAL),
                                        max_mismatches)
            finally:
                scratch.close()
        finally:
            mongo.close()
            shutil.rmtree(scratch_path, ignore_errors=True)
        result["seconds"] = round(time.monotonic() - started, 3)
        return result

    def export(self, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Mirrored entries under `prefix` (verify and tests)."""
        stop = K.upper_bound(prefix) if prefix else K.INTERNAL
        with self._gate.reading():
            return list(self.kv.scan(prefix, stop))

    @ray.method(enable_task_events=False)
    def traffic(self) -> dict:
        return self._traffic.snapshot()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        return os.getpid()

    def ping(self) -> bool:
        return True


def _dir_bytes(path: str) -> int:
    """Bytes of the files of a RocksDB directory (its SST, log and manifest files)."""
    total = 0
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        pass
    return total


def shard(settings: Settings, index: str, n: int):
    """Get or create shard n of `index`."""
    options = names.options(names.shard_name(index, n), max_task_retries=3, max_concurrency=16,
                            scheduling_strategy="SPREAD")
    return ShardStore.options(**options).remote(settings, index, n)


def shards(settings: Settings, index: str, count: int) -> list:
    return [shard(settings, index, n) for n in range(count)]
