"""MongoDB, the system of record. Collections are shared by all indexes and keyed
by index name; user field names and values only ever appear inside BSON values
or binary payloads, never as keys or operators.

  indexes          {_id: name, settings, shards, created_at}
  intake           {_id: "<op>:<batch>", op, index, batch, payload: JSON bytes}  until persisted
  bulk_operations  tracker checkpoints, {_id: op id, ...}
  chunks           {_id: "<index>:<shard>:<seq>", index, shard, seq, entries, postings, data}
                   a segment of mirrored shard entries (<= 5,000 postings: a posting block
                   counts its postings, any other entry 1), replayed in seq order
"""

from __future__ import annotations

import time
from typing import Iterator

import pymongo
from bson.binary import Binary
from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne
from pymongo.errors import DuplicateKeyError


class MongoStore:
    def __init__(self, uri: str, db_name: str = "raysearch", timeout_ms: int = 5000):
        self.client = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
        self.db = self.client[db_name]
        self.indexes = self.db["indexes"]
        self.intake = self.db["intake"]
        self.operations = self.db["bulk_operations"]
        self.chunks = self.db["chunks"]

    def ensure_schema(self) -> None:
        self.chunks.create_index([("index", ASCENDING), ("shard", ASCENDING), ("seq", ASCENDING)])
        self.intake.create_index([("op", ASCENDING)])
        self.operations.create_index([("index", ASCENDING), ("created_at", DESCENDING)])

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

    def delete_index(self, name: str) -> None:
        self.chunks.delete_many({"index": name})
        self.intake.delete_many({"index": name})
        self.indexes.delete_one({"_id": name})

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
    def save_operation(self, op: dict) -> None:
        self.operations.replace_one({"_id": op["operation_id"]}, {"_id": op["operation_id"], **op}, upsert=True)

    def load_operations(self) -> list[dict]:
        out = []
        for doc in self.operations.find({}):
            doc.pop("_id", None)
            out.append(doc)
        return out

    # -------------------------------------------------------------- chunks
    def next_chunk_seq(self, index: str, shard: int) -> int:
        last = self.chunks.find_one({"index": index, "shard": shard}, sort=[("seq", DESCENDING)], projection={"seq": 1})
        return last["seq"] + 1 if last else 0

    def write_chunks(self, index: str, shard: int, first_seq: int, blobs: list[tuple[int, int, bytes]]) -> None:
        """Idempotent: chunks are keyed by _id, so a replay after a crash rewrites the same documents."""
        ops = [
            ReplaceOne(
                {"_id": f"{index}:{shard}:{first_seq + i:012d}"},
                {"index": index, "shard": shard, "seq": first_seq + i, "entries": n, "postings": postings,
                 "data": Binary(blob)},
                upsert=True,
            )
            for i, (n, postings, blob) in enumerate(blobs)
        ]
        if ops:
            self.chunks.bulk_write(ops, ordered=True)

    def iter_chunks(self, index: str, shard: int) -> Iterator[bytes]:
        cursor = self.chunks.find({"index": index, "shard": shard}, projection={"data": 1}).sort("seq", ASCENDING)
        for doc in cursor:
            yield bytes(doc["data"])

    def has_chunks(self, index: str, shard: int) -> bool:
        return self.chunks.find_one({"index": index, "shard": shard}, projection={"_id": 1}) is not None


def is_unavailable(exc: Exception) -> bool:
    return isinstance(exc, (pymongo.errors.ConnectionFailure, pymongo.errors.ServerSelectionTimeoutError))
