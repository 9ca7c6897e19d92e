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

import time
from datetime import datetime, timezone

import pymongo
from bson.binary import Binary
from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne
from pymongo.errors import DuplicateKeyError

from raysearch.status import ACTIVE_VALUES, TERMINAL_VALUES
from raysearch.storage.chunk_store import ChunkStore, ChunksChanged  # noqa: F401  (ChunksChanged: re-exported)
from raysearch.storage.outages import outages_raise_unavailable

TTL_INDEX = "finished_at_ttl"


@outages_raise_unavailable
class MongoStore(ChunkStore):
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
