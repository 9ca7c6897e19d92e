"""A shard's chunk log in MongoDB: the `chunks` and `chunk_heads` collections (their layout
in storage/mongo.py's docstring). Written by the persistence actor (drain, compaction),
read back by a shard's restore and verify. MongoStore inherits it; it uses the
collections MongoStore opens (self.chunks, self.heads)."""

from __future__ import annotations

import itertools
import re
import threading
from typing import Iterable, Iterator

import zstandard
from bson.binary import Binary
from pymongo import ReplaceOne

from raysearch.storage.outages import outages_raise_unavailable


@outages_raise_unavailable
class ChunkStore:
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

    def write_chunks(self, index: str, shard: int, first_seq: int, blobs: list[tuple],
                     garbage: int = 0) -> None:
        """Idempotent: chunks are keyed by _id, so a replay after a crash rewrites the same documents.
        `blobs`: (entries, postings, payload) raw, or (entries, postings, payload, codec) as
        `compress_chunks` made them (a shard compresses its own: the writer only moves bytes).
        `garbage`: bytes of earlier values these entries supersede (on the first chunk), the
        compaction trigger's measure of history."""
        ops = [
            ReplaceOne(
                {"_id": _log_id(index, shard, first_seq + i)},
                {"index": index, "shard": shard, "seq": first_seq + i, "entries": blob[0], "postings": blob[1],
                 "garbage": garbage if i == 0 else 0, "codec": CODEC, "data": Binary(_compressed(blob))},
                upsert=True,
            )
            for i, blob in enumerate(blobs)
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


def compress_chunks(blobs: list[tuple[int, int, bytes]]) -> list[tuple[int, int, bytes, str]]:
    """Chunk payloads as write_chunks stores them, compressed where they are cut (in the
    shard's process), so that the one writer to MongoDB only moves bytes: compressing was
    44 % of the persistence actor's busy samples (benchmarks/profile_indexing.py). The codec
    travels with each payload: a payload without one (from a shard of an older version) is
    compressed by the writer, never stored as if it were."""
    return [(n, postings, _compress(blob), CODEC) for n, postings, blob in blobs]


def _compressed(blob: tuple) -> bytes:
    """The stored bytes of a (entries, postings, payload[, codec]) chunk."""
    if len(blob) == 4:
        if blob[3] != CODEC:
            raise ValueError(f"a chunk payload in codec {blob[3]!r}; this writer stores {CODEC!r}")
        return blob[2]
    return _compress(blob[2])


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
