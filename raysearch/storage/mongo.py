"""MongoDB, the system of record. Collections are shared by all indexes and keyed
by index name; user field names and values only ever appear inside BSON values
or binary payloads, never as keys or operators.

  indexes          {_id: name, settings, shards, created_at, deleting?: token while a DELETE runs}
  intake           {_id: "<op>:<batch>", op, index, batch, payload: JSON bytes}  until persisted
  bulk_operations  tracker checkpoints, {_id: op id, ...}
  chunks           a shard's mirrored entries (<= 5,000 postings per chunk: a posting block
                   counts its postings, any other entry 1), in two kinds:
                   log chunks  {_id: "<index>:<shard>:<seq>", index, shard, seq, entries, postings,
                               codec, data}
                               written by each drain cycle, replayed in seq order;
                   compacted   {_id: "<index>:<shard>:g<gen>:<n>", index, shard, gen, cseq, ...}
                               the live entries of every log chunk up to a seq, sorted by key
                   `data` is the columnar payload (encoding.encode_columns), zstd-compressed when
                   `codec` is "zstd" (chunks written before compression have no codec)
  chunk_heads      {_id: "<index>:<shard>", gen, upto}: a shard's state is compacted generation
                   `gen`, then the log chunks with seq > upto. Compaction writes a new
                   generation, then switches this one document, then deletes what it replaced,
                   so a crash at any point leaves a readable state.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re
import threading
import time
from datetime import datetime, timezone
from typing import Iterable, Iterator

import pymongo
import zstandard
from bson.binary import Binary
from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne
from pymongo.errors import DuplicateKeyError

from raysearch.errors import MongoUnavailable
from raysearch.status import ACTIVE_VALUES, TERMINAL_VALUES

TTL_INDEX = "finished_at_ttl"
# What an outage of the server looks like to pymongo (AutoReconnect and NetworkTimeout
# are ConnectionFailures); every public method of MongoStore raises MongoUnavailable instead.
OUTAGES = (pymongo.errors.ConnectionFailure, pymongo.errors.ServerSelectionTimeoutError)


def _outage_as_unavailable(fn):
    """The method, raising MongoUnavailable (errors.py) where pymongo raised an outage:
    the one signal every caller waits out (generators too: their reads happen as they are
    iterated)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except OUTAGES as exc:
                raise MongoUnavailable(f"MongoDB unreachable: {exc}") from exc
        return generator

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OUTAGES as exc:
            raise MongoUnavailable(f"MongoDB unreachable: {exc}") from exc
    return call


def _outages_raise_unavailable(cls):
    for name, attr in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(attr):
            setattr(cls, name, _outage_as_unavailable(attr))
    return cls


@_outages_raise_unavailable
class MongoStore:
    def __init__(self, uri: str, db_name: str = "raysearch", timeout_ms: int = 5000):
        # journal=True: a write is acknowledged once it is in the server's journal. Without it
        # the local server (SecantusDB) acknowledged writes it had not yet made durable: killed
        # with -9 a moment after, it came back without them (tests/unit/test_local_mongo.py),
        # and "ack means durable" rests on the intake log and checkpoints written here. Cost
        # measured on the local server: +0.8 ms per single write, none for a batch of 50.
        self.client = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                                  journal=True)
        self.db = self.client[db_name]
        self.indexes = self.db["indexes"]
        self.intake = self.db["intake"]
        self.operations = self.db["bulk_operations"]
        self.chunks = self.db["chunks"]
        self.heads = self.db["chunk_heads"]
        self.keys = self.db["api_keys"]
        self.aliases = self.db["aliases"]  # one document: {_id: "aliases", map: {alias: index}, version}
        self.reindexes = self.db["reindexes"]  # one document per reindex (app/reindex.py)

    def ensure_schema(self) -> None:
        self.chunks.create_index([("index", ASCENDING), ("shard", ASCENDING), ("seq", ASCENDING)])
        self.chunks.create_index([("index", ASCENDING), ("shard", ASCENDING), ("gen", ASCENDING), ("cseq", ASCENDING)])
        self.intake.create_index([("op", ASCENDING)])
        self.operations.create_index([("index", ASCENDING), ("created_at", DESCENDING)])
        self.ensure_operations_schema()

    def ping(self) -> None:
        self.client.admin.command("ping")

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------- indexes
    def create_index_meta(self, name: str, settings: dict, shards: int) -> bool:
        """True if created, False if it already existed."""
        try:
            self.indexes.insert_one({"_id": name, "settings": settings, "shards": shards, "created_at": time.time()})
            return True
        except DuplicateKeyError:
            return False

    def replace_index_settings(self, name: str, old: dict, new: dict) -> bool:
        """Compare-and-set of an index's settings (no transactions needed): True if replaced."""
        return self.indexes.update_one({"_id": name, "settings": old}, {"$set": {"settings": new}}).modified_count == 1

    def get_index_meta(self, name: str) -> dict | None:
        return self.indexes.find_one({"_id": name})

    def list_index_metas(self) -> list[dict]:
        return list(self.indexes.find({}).sort("_id", ASCENDING))

    def mark_index_deleting(self, name: str, token: str, stale_after_s: float = 120.0) -> tuple[str, dict | None]:
        """Mark the record as being deleted by the caller holding `token`. Returns ("marked",
        the record before the mark), ("busy", record) when another deletion holds it (one
        marked more than `stale_after_s` ago is taken over: its caller died half-way), or
        ("missing", None)."""
        now = time.time()
        free = {"_id": name, "$or": [{"deleting": {"$exists": False}}, {"deleting_at": {"$lt": now - stale_after_s}}]}
        meta = self.indexes.find_one_and_update(free, {"$set": {"deleting": token, "deleting_at": now}})
        if meta is not None:
            return "marked", meta
        meta = self.indexes.find_one({"_id": name})
        return ("missing", None) if meta is None else ("busy", meta)

    def delete_index(self, name: str, shards: int | None = None, token: str | None = None) -> None:
        """Delete the index's chunks, intake batches and record. With `token`, the record
        goes only if it still carries that deletion mark (a later DELETE took over, else)."""
        self.delete_chunks(name, shards)
        self.intake.delete_many({"index": name})
        self.indexes.delete_one({"_id": name} if token is None else {"_id": name, "deleting": token})

    # ------------------------------------------------------------ reindexes
    def put_reindex(self, record: dict) -> None:
        self.reindexes.replace_one({"_id": record["_id"]}, record, upsert=True)

    def get_reindex(self, op_id: str) -> dict | None:
        return self.reindexes.find_one({"_id": op_id})

    # ------------------------------------------------------------- aliases
    def get_aliases(self) -> tuple[int, dict[str, str]]:
        """(version, alias -> index); every alias lives in one document, so a set of changes
        is one compare-and-set (app/aliases.py): atomic without transactions."""
        doc = self.aliases.find_one({"_id": "aliases"})
        return (0, {}) if doc is None else (doc["version"], dict(doc["map"]))

    def replace_aliases(self, version: int, new: dict[str, str]) -> bool:
        """Compare-and-set on the version read: True if `new` replaced it."""
        if version == 0:
            try:
                self.aliases.insert_one({"_id": "aliases", "map": new, "version": 1})
                return True
            except DuplicateKeyError:
                return False
        done = self.aliases.update_one({"_id": "aliases", "version": version},
                                       {"$set": {"map": new, "version": version + 1}})
        return done.modified_count == 1

    # ------------------------------------------------------------- API keys
    # {_id: key id, hash: SHA-256 of its secret, actions, indexes, expires_at, description,
    # created_at}: never the secret itself (raysearch/access.py)
    def insert_key(self, record: dict) -> None:
        self.keys.insert_one(record)

    def get_key(self, key_id: str) -> dict | None:
        return self.keys.find_one({"_id": key_id})

    def list_keys(self) -> list[dict]:
        return list(self.keys.find({}, {"hash": 0}).sort("created_at", ASCENDING))

    def delete_key(self, key_id: str) -> bool:
        return self.keys.delete_one({"_id": key_id}).deleted_count == 1

    # -------------------------------------------------------------- intake
    def put_batches(self, op_id: str, index: str, payloads: list[bytes]) -> None:
        """Idempotent for a caller-given op id: a repeat (a retried writer that stopped between
        this and the tracker's checkpoint) replaces the same documents."""
        docs = [{"_id": f"{op_id}:{i}", "op": op_id, "index": index, "batch": i, "payload": Binary(p)}
                for i, p in enumerate(payloads)]
        if not docs:
            return
        try:
            self.intake.insert_many(docs, ordered=True)
        except pymongo.errors.BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
            self.intake.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=True)

    def get_batch(self, op_id: str, batch_no: int) -> bytes | None:
        doc = self.intake.find_one({"_id": f"{op_id}:{batch_no}"})
        return bytes(doc["payload"]) if doc else None

    def delete_batches(self, op_id: str, batch_nos: list[int]) -> None:
        if batch_nos:
            self.intake.delete_many({"_id": {"$in": [f"{op_id}:{b}" for b in batch_nos]}})

    # ---------------------------------------------------------- operations
    # Checkpoints stay after their operation ends (the tracker keeps only active ones in
    # memory); a terminal one carries `finished_at` (a BSON datetime) and leaves after
    # `operation_retention_s`: a TTL index where the server runs TTL monitors, and
    # sweep_operations (called by the tracker) everywhere.
    def ensure_operations_schema(self, retention_s: float | None = None) -> None:
        self.operations.create_index([("status", ASCENDING)])
        self.operations.create_index([("created_at", DESCENDING), ("_id", DESCENDING)])
        self.operations.create_index([("index", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)])
        if retention_s is None:
            return
        seconds = max(int(retention_s), 0)
        try:
            self.operations.create_index([("finished_at", ASCENDING)], name=TTL_INDEX, expireAfterSeconds=seconds)
        except pymongo.errors.OperationFailure:  # exists with another expireAfterSeconds: change it
            try:
                self.db.command("collMod", self.operations.name,
                                index={"name": TTL_INDEX, "expireAfterSeconds": seconds})
            except pymongo.errors.OperationFailure:  # the sweep still enforces the retention
                pass

    def save_operation(self, op: dict) -> None:
        doc = {"_id": op["operation_id"], **op}
        if op.get("status") in TERMINAL_VALUES:
            doc["finished_at"] = datetime.fromtimestamp(op.get("completed_at") or time.time(), tz=timezone.utc)
        else:
            doc.pop("finished_at", None)
        self.operations.replace_one({"_id": op["operation_id"]}, doc, upsert=True)

    @staticmethod
    def _operation(doc: dict | None) -> dict | None:
        if doc is not None:
            doc.pop("_id", None)
            doc.pop("finished_at", None)
        return doc

    def load_operation(self, op_id: str) -> dict | None:
        return self._operation(self.operations.find_one({"_id": op_id}))

    def load_active_operations(self) -> list[dict]:
        """The operations to resume (the tracker's start): a query on status, never all history."""
        return [self._operation(d) for d in self.operations.find({"status": {"$in": list(ACTIVE_VALUES)}})]

    def load_operations(self) -> list[dict]:
        """Every checkpoint (tools and tests; the tracker reads only active ones)."""
        return [self._operation(d) for d in self.operations.find({})]

    def list_operations(self, index: str | None, limit: int,
                        after: tuple[float, str] | None = None) -> list[dict]:
        """A page of checkpoints, newest first (created_at desc, then id desc), after a cursor."""
        query: dict = {} if index is None else {"index": index}
        if after is not None:
            created_at, op_id = after
            query["$or"] = [{"created_at": {"$lt": created_at}}, {"created_at": created_at, "_id": {"$lt": op_id}}]
        cursor = self.operations.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [self._operation(d) for d in cursor]

    def sweep_operations(self, finished_before: datetime, limit: int = 1000) -> int:
        """Delete terminal operations finished before `finished_before`, with any intake payloads
        they left (batches that failed); returns how many. Active operations are never touched."""
        query = {"finished_at": {"$lt": finished_before}, "status": {"$in": list(TERMINAL_VALUES)}}
        ids = [d["_id"] for d in self.operations.find(query, projection={"_id": 1}).limit(limit)]
        if not ids:
            return 0
        self.intake.delete_many({"op": {"$in": ids}})
        return self.operations.delete_many({"_id": {"$in": ids}, **query}).deleted_count

    # -------------------------------------------------------------- chunks
    # Chunks are read, counted and deleted by _id, in pages: a log chunk's _id is
    # "<index>:<shard>:<seq, 12 digits>", a compacted one's "<index>:<shard>:g<gen>:<n, 9 digits>",
    # with seqs contiguous and a generation's chunks numbered from 0, so every _id is known
    # without a query. The local server (SecantusDB 0.7) materialises the whole result of a
    # query that filters or sorts on other fields (a shard's chunks: GBs of RSS at 1M
    # documents, and seconds per query as pages), while `_id: {$in: [...]}` reads only those
    # documents (/tmp/exp/secantus_mem7.py: 600 MB in pages of 16 in 2.4 s, RSS flat).

    def head(self, index: str, shard: int) -> dict:
        """{gen, upto, chunks, live_entries, live_bytes} of a shard's compacted state (gen 0: none)."""
        return self.heads.find_one({"_id": f"{index}:{shard}"}) or {"gen": 0, "upto": -1, "chunks": 0,
                                                                   "live_entries": 0, "live_bytes": 0}

    def next_chunk_seq(self, index: str, shard: int) -> int:
        """The seq of the shard's next log chunk: after every log chunk and after what is compacted.

        Log seqs above the head's `upto` are contiguous (written in order, each batch of
        chunks from the next seq on), so the first missing one is found by galloping up from
        `upto` and then bisecting, with one-document lookups by _id. (A range or sorted query
        on _id makes the local server read and decode the whole collection: ~1 s and ~2 MB of
        RSS per MB of chunks each time, at every compaction; its memory grew to the machine's.)"""
        start = self.head(index, shard)["upto"]  # known written (or -1)

        def exists(seq: int) -> bool:
            return self.chunks.find_one({"_id": _log_id(index, shard, seq)}, projection={"_id": 1}) is not None

        low, step = start, 1  # low: a seq known written (or the head's upto)
        while exists(low + step):
            low, step = low + step, step * 2
        high = low + step  # known missing
        while high - low > 1:
            mid = (low + high) // 2
            if exists(mid):
                low = mid
            else:
                high = mid
        return high

    def write_chunks(self, index: str, shard: int, first_seq: int, blobs: list[tuple[int, int, bytes]],
                     garbage: int = 0) -> None:
        """Idempotent: chunks are keyed by _id, so a replay after a crash rewrites the same documents.
        `garbage`: bytes of earlier values these entries supersede (on the first chunk), the
        compaction trigger's measure of history."""
        ops = [
            ReplaceOne(
                {"_id": _log_id(index, shard, first_seq + i)},
                {"index": index, "shard": shard, "seq": first_seq + i, "entries": n, "postings": postings,
                 "garbage": garbage if i == 0 else 0, "codec": CODEC, "data": Binary(_compress(blob))},
                upsert=True,
            )
            for i, (n, postings, blob) in enumerate(blobs)
        ]
        if ops:
            self.chunks.bulk_write(ops, ordered=True)

    def log_stats(self, index: str, shard: int) -> tuple[int, int]:
        """(entries, bytes of values they superseded) of the log chunks not yet compacted."""
        upto = self.head(index, shard)["upto"]
        entries = garbage = 0
        for doc in self._log_docs(index, shard, upto, self.next_chunk_seq(index, shard) - 1,
                                  {"entries": 1, "garbage": 1}, page=256):
            entries += doc.get("entries", 0)
            garbage += doc.get("garbage", 0)
        return entries, garbage

    def _by_ids(self, ids: list[str], projection: dict) -> list[dict]:
        """The documents with these _ids that exist, in the order of `ids`."""
        found = {doc["_id"]: doc for doc in self.chunks.find({"_id": {"$in": ids}}, projection=projection)}
        return [found[i] for i in ids if i in found]

    def _log_docs(self, index: str, shard: int, after: int, upto: int, projection: dict,
                  page: int | None = None) -> Iterator[dict]:
        """Log chunks with after < seq <= upto, in seq order."""
        page = page or CHUNK_PAGE
        for start in range(after + 1, upto + 1, page):
            yield from self._by_ids([_log_id(index, shard, s) for s in range(start, min(start + page, upto + 1))],
                                    projection)

    def _generation_docs(self, index: str, shard: int, gen: int, count: int | None,
                         projection: dict) -> Iterator[dict]:
        """Chunks of generation `gen` in order; `count` None (unknown): until a short page."""
        n = 0
        while count is None or n < count:
            stop = n + CHUNK_PAGE if count is None else min(n + CHUNK_PAGE, count)
            ids = [_gen_id(index, shard, gen, i) for i in range(n, stop)]
            docs = self._by_ids(ids, projection)
            yield from docs
            if count is None and len(docs) < len(ids):
                return
            n = stop

    def _iter_state(self, index: str, shard: int, head: dict, upto: int | None = None) -> Iterator[bytes]:
        if head["gen"]:
            for doc in self._generation_docs(index, shard, head["gen"], head.get("chunks"), _PAYLOAD):
                yield _payload(doc)
        if upto is None:
            upto = self.next_chunk_seq(index, shard) - 1
        for doc in self._log_docs(index, shard, head["upto"], upto, _PAYLOAD):
            yield _payload(doc)

    def iter_chunks(self, index: str, shard: int) -> Iterator[bytes]:
        """The shard's chunk payloads in replay order: its compacted generation, then newer log
        chunks. Raises ChunksChanged at the end if a compaction switched generations meanwhile
        (what was read may then be incomplete: read again from the start)."""
        head = self.head(index, shard)
        yield from self._iter_state(index, shard, head)
        now = self.head(index, shard)
        if (now["gen"], now["upto"]) != (head["gen"], head["upto"]):
            raise ChunksChanged(f"chunks of {index}:{shard} were compacted while being read")

    def iter_compactable(self, index: str, shard: int, head: dict, upto: int) -> Iterator[bytes]:
        """What a compaction replays: generation `head`, then log chunks up to `upto`."""
        return self._iter_state(index, shard, head, upto)

    def _delete_ids(self, ids, stop_when_none: bool = False) -> int:
        """Delete chunks by _id, 256 at a time; with stop_when_none, stop after a page that
        deleted nothing (ids numbered from 0 and written in order). Returns how many."""
        total = 0
        batch: list[str] = []
        for chunk_id in ids:
            batch.append(chunk_id)
            if len(batch) >= 256:
                deleted = self.chunks.delete_many({"_id": {"$in": batch}}).deleted_count
                total += deleted
                batch = []
                if stop_when_none and not deleted:
                    return total
        if batch:
            total += self.chunks.delete_many({"_id": {"$in": batch}}).deleted_count
        return total

    def write_generation(self, index: str, shard: int, gen: int,
                         blobs: Iterable[tuple[int, int, bytes]]) -> tuple[int, int]:
        """Write compacted chunks of generation `gen` (not yet visible); returns (chunks, bytes)."""
        # leftovers of a crashed attempt (written in order from 0)
        self._delete_ids((_gen_id(index, shard, gen, i) for i in itertools.count()), stop_when_none=True)
        count, size, batch = 0, 0, []
        for n, postings, blob in blobs:
            size += len(blob)
            batch.append(ReplaceOne({"_id": _gen_id(index, shard, gen, count)},
                                    {"index": index, "shard": shard, "gen": gen, "cseq": count, "entries": n,
                                     "postings": postings, "codec": CODEC, "data": Binary(_compress(blob))},
                                    upsert=True))
            count += 1
            if len(batch) >= 64:
                self.chunks.bulk_write(batch, ordered=True)
                batch = []
        if batch:
            self.chunks.bulk_write(batch, ordered=True)
        return count, size

    def delete_generation(self, index: str, shard: int, gen: int, count: int) -> int:
        """Delete a generation that never became visible (its index was deleted meanwhile)."""
        return self._delete_ids(_gen_id(index, shard, gen, i) for i in range(count))

    def switch_generation(self, index: str, shard: int, gen: int, upto: int, live_entries: int,
                          live_bytes: int, chunks: int, replaced: dict) -> None:
        """The atomic step of a compaction: one single-document write. It also records what the
        new generation replaces (`replaced` is the head before it), for drop_replaced to delete;
        a crash before that is done leaves the record, and the next compaction finishes it first."""
        self.heads.replace_one({"_id": f"{index}:{shard}"}, {
            "gen": gen, "upto": upto, "chunks": chunks, "live_entries": live_entries, "live_bytes": live_bytes,
            "drop": {"gen": replaced.get("gen", 0), "chunks": replaced.get("chunks"),
                     "log_from": replaced.get("upto", -1) + 1, "log_to": upto},
        }, upsert=True)

    def drop_replaced(self, index: str, shard: int) -> int:
        """Delete what the current generation replaced, as its head records it: the previous
        generation's chunks and the log chunks it covers; then clear the record."""
        head = self.head(index, shard)
        drop = head.get("drop")
        if not drop:
            return 0
        deleted = 0
        if drop["gen"]:
            if drop.get("chunks") is None:  # a head from before chunk counts were kept
                deleted += self.chunks.delete_many({"index": index, "shard": shard, "gen": drop["gen"]}).deleted_count
            else:
                deleted += self._delete_ids(_gen_id(index, shard, drop["gen"], i) for i in range(drop["chunks"]))
        deleted += self._delete_ids(_log_id(index, shard, s) for s in range(drop["log_from"], drop["log_to"] + 1))
        self.heads.update_one({"_id": f"{index}:{shard}"}, {"$unset": {"drop": ""}})
        return deleted

    def has_chunks(self, index: str, shard: int) -> bool:
        """Whether MongoDB holds anything of the shard: its compacted generation's first chunk
        or the log chunk after it (lookups by _id: see next_chunk_seq)."""
        head = self.head(index, shard)
        ids = [_log_id(index, shard, head["upto"] + 1)]
        if head["gen"]:
            ids.append(_gen_id(index, shard, head["gen"], 0))
        return self.chunks.find_one({"_id": {"$in": ids}}, projection={"_id": 1}) is not None

    def delete_chunks(self, index: str, shards: int | None = None) -> None:
        """Delete an index's chunks and heads. With its shard count, each shard's chunks go by
        _id first (generation, pending drops, log), so the final sweep by `index` only meets
        stragglers: on the local server a query on another field than _id reads every document
        it matches, GBs for a large index."""
        for shard in range(shards or 0):
            head = self.head(index, shard)
            gens = [(head["gen"], head.get("chunks"))]
            drop = head.get("drop") or {}
            if drop.get("gen"):
                gens.append((drop["gen"], drop.get("chunks")))
            for gen, count in gens:
                if gen:
                    ids = (_gen_id(index, shard, gen, i) for i in (range(count) if count is not None
                                                                    else itertools.count()))
                    self._delete_ids(ids, stop_when_none=count is None)
            last = self.next_chunk_seq(index, shard) - 1
            first = min(drop.get("log_from", head["upto"] + 1), head["upto"] + 1)
            self._delete_ids(_log_id(index, shard, s) for s in range(max(first, 0), last + 1))
        self.chunks.delete_many({"index": index})
        self.heads.delete_many({"_id": {"$regex": "^" + re.escape(index) + ":[0-9]+$"}})


def _log_id(index: str, shard: int, seq: int) -> str:
    return f"{index}:{shard}:{seq:012d}"


def _gen_id(index: str, shard: int, gen: int, n: int) -> str:
    return f"{index}:{shard}:g{gen}:{n:09d}"


# Chunk payloads are compressed with zstd (level 1: ~390 MB/s on this machine, 8x on the
# scale run's chunks, whose sorted keys repeat long prefixes and whose stored documents
# and term lists are JSON). MongoDB's cost is per operation, but its logical size
# (dataSize) and the bytes each write and restore move are per byte: uncompressed, the
# chunks weighed 2.6x the shards' RocksDB (which compresses its own files).
CODEC = "zstd"
_PAYLOAD = {"data": 1, "codec": 1}
_codecs = threading.local()  # zstandard contexts are not for concurrent use: one per thread


def _compress(blob: bytes) -> bytes:
    if not hasattr(_codecs, "compressor"):
        _codecs.compressor = zstandard.ZstdCompressor(level=1)
    return _codecs.compressor.compress(blob)


def _payload(doc: dict) -> bytes:
    """A chunk document's columnar payload, decompressed."""
    data = bytes(doc["data"])
    codec = doc.get("codec")
    if codec is None:  # written before chunks were compressed
        return data
    if codec != CODEC:
        raise ValueError(f"chunk {doc.get('_id')!r} has an unknown codec {codec!r}")
    if not hasattr(_codecs, "decompressor"):
        _codecs.decompressor = zstandard.ZstdDecompressor()
    return _codecs.decompressor.decompress(data)


CHUNK_PAGE = 16  # chunk documents per query when a shard's chunks are read back (~ 16 x <= 1 MB)


class ChunksChanged(RuntimeError):
    """A compaction switched a shard's chunk generation while it was being read."""
