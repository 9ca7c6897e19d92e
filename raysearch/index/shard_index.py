"""One shard's inverted index over a KV store: writes, change log, statistics.

Pure logic (no Ray): the ShardStore actor wraps it, unit tests run it on MemoryKV.
Every write of a sub-batch -- documents, postings, statistics, the applied-batch
marker and a change-log entry per touched key -- goes into ONE atomic KV write,
so a crash leaves either all of a batch or none of it, and nothing written can
escape persistence (the change log is drained from this same store).
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import pickle
import threading
from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Iterable, Iterator

import numpy as np

from raysearch.config import POSTING_CACHE_POSTINGS
from raysearch.index import keys as K
from raysearch.index.batch import ShardBatch, add_field_totals, parse_indexed
from raysearch.index.doc_values import DocValues
from raysearch.index.encoding import (
    block_columns,
    block_postings,
    block_size,
    block_without,
    columnar_count,
    columnar_weights,
    decode_entries,
    decode_u64,
    encode_columns,
    encode_u64,
    split_columnar,
)
from raysearch.storage.kv import KV

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1


class _Overlay:
    """Pending changes of one batch on top of the store (read-your-writes)."""

    def __init__(self, kv: KV):
        self.kv = kv
        self.changes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.changes:
            return self.changes[key]
        return self.kv.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        self.changes[key] = value


@dataclass
class _Removal:
    """What a batch's removals take out of the statistics (applied once the batch is durable)."""

    docnums: list[int] = dataclass_field(default_factory=list)
    field_totals: dict[str, list[int]] = dataclass_field(default_factory=dict)  # field -> [documents, total length]
    prefix_counts: dict[bytes, int] = dataclass_field(default_factory=dict)  # term prefix -> documents leaving it


class ShardStats:
    """Document frequencies, field statistics and the document count of one shard.

    Derived data: rebuilt from the per-document `T` entries when the shard opens
    (so they are never written per posting, and never disagree with the
    postings), then updated after each applied batch.
    """

    def __init__(self):
        self.df: dict[tuple[str, str], int] = {}
        self.fields: dict[str, list[int]] = {}  # field -> [documents having it, total length]
        self.term_counts: dict[str, int] = {}  # field -> distinct terms (kept as they change: O(1) metadata)
        self.docs = 0
        self._sorted: dict[str, list[str]] = {}  # field -> sorted terms, built lazily for prefixes
        self._sorted_lock = threading.Lock()
        self._changes = 0  # adds so far: a sorted list built across one is not cached
        # Dense shard-local document numbers (stored in the T entries, assigned per batch
        # from its base), for vectorised scoring. A removed document's number simply has
        # no postings left; doc_ids[number] is None for numbers not (or no longer) held.
        self.doc_ids: list[str | None] = []
        self.live = bytearray()  # 1 at the numbers of live documents (match-all, doc values)

    def number(self, doc_id: str, docnum: int) -> None:
        if docnum >= len(self.doc_ids):
            grow = docnum + 1 - len(self.doc_ids)
            # `live` grows first: a query on another thread reads n = len(doc_ids), then
            # live_mask(n), and the GIL may switch between the two extends.
            self.live.extend(bytes(docnum + 1 - len(self.live)))
            self.doc_ids.extend([None] * grow)
        self.doc_ids[docnum] = doc_id
        self.live[docnum] = 1

    def unnumber(self, docnum: int) -> None:
        """A removed document's number holds nothing any more."""
        if docnum < len(self.doc_ids):
            self.doc_ids[docnum] = None
            self.live[docnum] = 0

    def live_mask(self, n: int) -> np.ndarray:
        """Booleans over numbers < n: which hold a live document (a copy)."""
        # A slice is a copy made at once under the GIL: no numpy view ever exports `live`,
        # which an apply on another thread may be growing (a view would make that raise).
        mask = np.frombuffer(self.live[:n], dtype=np.bool_)
        if len(mask) < n:  # numbers being added on another thread are not live yet
            mask = np.concatenate((mask, np.zeros(n - len(mask), dtype=np.bool_)))
        return mask

    def add(self, indexed: list, sign: int) -> None:
        """Count one document's `T` entry in (sign=1) or out (sign=-1)."""
        df = self.df
        for field, length, terms in indexed:
            acc = self.fields.setdefault(field, [0, 0])
            acc[0] += sign
            acc[1] += sign * length
            if acc[0] <= 0:
                del self.fields[field]
            distinct = 0
            for term in terms:
                key = (field, term)
                n = df.get(key, 0) + sign
                if n > 0:
                    df[key] = n
                    distinct += n == 1 and sign > 0
                else:
                    distinct -= df.pop(key, None) is not None
            if distinct:
                self.term_counts[field] = self.term_counts.get(field, 0) + distinct
            with self._sorted_lock:
                self._changes += 1
                self._sorted.pop(field, None)
        self.docs += sign

    def add_batch(self, field_totals: dict[str, list[int]], documents: int, prefixes: list[bytes],
                  blocks: list[bytes]) -> None:
        """Count a batch's `documents` new documents in: per field [documents, total length]
        as the worker summed them from their term lists, document frequencies from the
        batch's blocks (one per (field, term), holding each document at most once, so a
        block's size is its df increment). The same result as `add(indexed, 1)` per document
        (a unit test compares them), with Python work per block instead of per (document,
        term): a document has ~100 such pairs, a batch ~16 blocks per document."""
        self._count(field_totals, documents, ((p, block_size(b)) for p, b in zip(prefixes, blocks)), 1)

    def remove_batch(self, field_totals: dict[str, list[int]], documents: int,
                     prefix_counts: dict[bytes, int]) -> None:
        """Count removed documents out: their per-field totals, and per term prefix how many
        of them held it (as `add(indexed, -1)` per document would)."""
        self._count(field_totals, documents, prefix_counts.items(), -1)

    def _count(self, field_totals: dict[str, list[int]], documents: int, prefix_counts, sign: int) -> None:
        fields = self.fields
        touched = set()
        for field, (docs, length) in field_totals.items():
            acc = fields.get(field)
            if acc is None:
                acc = fields[field] = [0, 0]
            acc[0] += sign * docs
            acc[1] += sign * length
            if acc[0] <= 0:
                del fields[field]
        df, term_counts = self.df, self.term_counts
        for prefix, n in prefix_counts:
            key = tuple(prefix[1:-1].decode().split("\x00", 1))
            old = df.get(key, 0)
            new = old + sign * n
            if new > 0:
                df[key] = new
                if not old:
                    term_counts[key[0]] = term_counts.get(key[0], 0) + 1
                    touched.add(key[0])
            elif df.pop(key, None) is not None:
                left = term_counts.get(key[0], 0) - 1
                if left > 0:
                    term_counts[key[0]] = left
                else:
                    term_counts.pop(key[0], None)
                touched.add(key[0])
        with self._sorted_lock:  # sorted term lists change only where a term came or went
            self._changes += 1
            for field in touched:
                self._sorted.pop(field, None)
        self.docs += sign * documents

    def sorted_terms(self, field: str) -> list[str]:
        terms = self._sorted.get(field)
        if terms is None:
            changes = self._changes
            # list(dict) copies the keys in one C call (an add on another thread cannot
            # change the dict mid-iteration); cached only if no add came meanwhile
            terms = sorted(t for f, t in list(self.df) if f == field)
            with self._sorted_lock:
                if changes == self._changes:
                    self._sorted[field] = terms
        return terms


class PostingCache:
    """LRU of posting arrays, bounded by the number of postings held.

    Thread-safe: the shard actor runs queries on several threads while one applies.
    Every write bumps `generation` and drops the lists it touched, under the lock; a
    list read from RocksDB is cached only if no write happened since its read began,
    checked under the same lock (else a list read before a write could be cached after
    the write dropped it, and hide the write's documents from every later query)."""

    def __init__(self, max_postings: int):
        self.max_postings = max_postings
        self.size = 0
        self.generation = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key, arrays, generation: int) -> None:
        """Cache a list read while the cache was at `generation`, if it still is."""
        with self._lock:
            if generation != self.generation:
                return
            self._pop(key)
            self._items[key] = arrays
            self.size += len(arrays[0])
            while self.size > self.max_postings and self._items:
                _, old = self._items.popitem(last=False)
                self.size -= len(old[0])

    def invalidate(self, keys: Iterable[bytes] | None = None) -> None:
        """After a write: drop these lists (None: all of them)."""
        with self._lock:
            self.generation += 1
            if keys is None:
                self._items.clear()
                self.size = 0
            else:
                for key in keys:
                    self._pop(key)

    def _pop(self, key) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.size -= len(item[0])


class ShardIndex:
    def __init__(self, kv: KV, cache_postings: int = POSTING_CACHE_POSTINGS):
        self.kv = kv
        self.last_opstamp = decode_u64(kv.get(K.LAST_OPSTAMP))
        self.snapshot_opstamp = -1  # opstamp of the snapshot on disk (-1: none usable)
        self.opened_from = "scan"  # or "snapshot": how the derived state was built at open
        if self._load_snapshot():
            self.opened_from = "snapshot"
        else:
            self._load()
        self.cache = PostingCache(cache_postings)
        # Version of the statistics (df, field lengths, dictionary), for an ingress that keeps
        # summed statistics between queries: a seqlock (odd while an apply changes them) under
        # an epoch drawn per open, so a restarted shard never repeats an earlier version.
        self.epoch = os.urandom(6).hex()
        self._stats_seq = 0
        # opstamp -> keys it logged, for the change-log entries not yet drained; kept in
        # memory so watermarks and backlog sizes never need a scan of the log.
        self._log_sizes: dict[int, int] = {op: columnar_count(blob) for _, op, blob in self._log()}
        # opstamp -> bytes of earlier values its entries supersede, for the compaction trigger
        # (in memory: after a restart, batches not yet drained count none, which only delays it)
        self._log_garbage: dict[int, int] = {}
        self._batch_garbage = 0

    # ------------------------------------------------------------ snapshot
    # The derived state (statistics, doc numbers, batch bases, doc-value columns) is
    # rebuilt by a scan of every T entry -- time proportional to the index. A snapshot
    # of it, written when the shard is idle, lets a shard open in time proportional to
    # the snapshot's size instead. It is used only if it was taken at the store's last
    # opstamp: every batch moves ~M in its own atomic write, so any later write makes an
    # older snapshot stale, and a crash can never pair a snapshot with other data.
    # Pickle is safe here: the value is written by this class into the shard's own
    # RocksDB (never mirrored, never from a user), like the rest of the shard's files.

    def snapshot_bytes(self) -> bytes:
        """The derived state as of last_opstamp; the caller keeps writes out meanwhile."""
        stats = self.stats
        live = np.frombuffer(bytes(stats.live), dtype=np.bool_)
        state = {
            "format": SNAPSHOT_FORMAT, "opstamp": self.last_opstamp,
            "df": stats.df, "fields": stats.fields, "term_counts": stats.term_counts,
            "docs": stats.docs, "doc_ids": stats.doc_ids, "live": bytes(stats.live),
            "bases": self.bases, "next_docnum": self.next_docnum,
            "values": self.values.export(live),
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def write_snapshot(self) -> int:
        """Snapshot the derived state (no writes may run meanwhile); returns its opstamp."""
        if self.snapshot_opstamp != self.last_opstamp:
            blob = self.snapshot_bytes()
            self.kv.write({K.SNAPSHOT: blob})
            self.snapshot_opstamp = self.last_opstamp
        return self.snapshot_opstamp

    def _load_snapshot(self) -> bool:
        raw = self.kv.get(K.SNAPSHOT)
        if raw is None:
            return False
        try:
            state = pickle.loads(raw)
            if state.get("format") != SNAPSHOT_FORMAT or state["opstamp"] != self.last_opstamp:
                return False
            stats = ShardStats()
            stats.df, stats.fields, stats.term_counts = state["df"], state["fields"], state["term_counts"]
            stats.docs, stats.doc_ids, stats.live = state["docs"], state["doc_ids"], bytearray(state["live"])
            values = DocValues.from_export(state["values"])
        except Exception as exc:  # unreadable: the scan rebuilds everything (and a new snapshot follows)
            log.warning("shard snapshot unreadable (%s): rebuilding the statistics by a scan", exc)
            return False
        self.stats, self.values = stats, values
        self.bases, self.next_docnum = state["bases"], state["next_docnum"]
        self.snapshot_opstamp = self.last_opstamp
        return True

    def _load(self) -> None:
        """Derive the statistics, doc numbers and batch bases from the stored entries."""
        stats = ShardStats()
        values = DocValues()
        for key, raw in self.kv.scan(K.DOC_TERMS, K.upper_bound(K.DOC_TERMS)):
            docnum, _, terms = K.split_doc_terms_value(raw)
            stats.number(key[1:].decode(), docnum)
            indexed, typed = parse_indexed(terms)
            stats.add(indexed, 1)
            if typed:
                values.add(docnum, typed)
        self.values = values
        self.bases: dict[int, int] = {}  # opstamp -> base doc number of its batch
        self.next_docnum = 0
        for key, raw in self.kv.scan(K.BATCH_BASE, K.upper_bound(K.BATCH_BASE)):
            opstamp, base, count = K.split_batch_base(key, raw)
            self.bases[opstamp] = base
            self.next_docnum = max(self.next_docnum, base + count)
        self.stats = stats

    # ---------------------------------------------------------------- writes
    def apply(self, batch_key: str, batch: ShardBatch) -> int:
        """Index the batch's documents (replacing same ids) and delete its deletes, atomically.

        Idempotent: a batch key seen before is not applied again, and the
        opstamp of its first application is returned.
        """
        seen = self.kv.get(K.applied_key(batch_key))
        if seen is not None:
            return decode_u64(seen)
        opstamp = self.last_opstamp + 1
        self._batch_garbage = 0
        stamp = K.opstamp_bytes(opstamp)
        overlay = _Overlay(self.kv)
        touched: set[bytes] = set(batch.block_prefixes)  # term prefixes whose cached lists go stale
        removed = self._remove_docs(overlay, touched, [*batch.deletes, *batch.doc_ids])
        base = self.next_docnum
        changes = overlay.changes
        for i, (doc_id, stored, terms) in enumerate(zip(batch.doc_ids, batch.stored, batch.terms)):
            changes[K.doc_terms_key(doc_id)] = K.doc_terms_value(base + i, stamp, terms)
            changes[K.doc_key(doc_id)] = stored
        for prefix, block in zip(batch.block_prefixes, batch.blocks):
            changes[K.block_key(prefix, stamp)] = block
        if batch.doc_ids:
            changes[K.batch_base_key(opstamp)] = K.batch_base_value(base, len(batch.doc_ids))
        changes[K.applied_key(batch_key)] = encode_u64(opstamp)
        # One change-log entry per opstamp, naming every data key the batch wrote.
        # The change-log entry holds the batch's keys AND values, columnar: it is the
        # MongoDB chunk payload already, so draining never re-reads the keys it names.
        logged = list(changes)
        changes[K.change_log_key(opstamp, b"")] = encode_columns(logged, list(changes.values()))
        changes[K.LAST_OPSTAMP] = encode_u64(opstamp)
        # Registered before the write and before last_opstamp moves, so a concurrent
        # persisted_upto() can never count this batch as persisted.
        self._log_sizes[opstamp] = len(logged)
        if self._batch_garbage:
            self._log_garbage[opstamp] = self._batch_garbage
        # Numbered before their postings become visible to searches (a query ignores
        # numbers beyond those it saw when it started).
        self.bases[opstamp] = base
        for i, doc_id in enumerate(batch.doc_ids):
            self.stats.number(doc_id, base + i)
        try:
            self.kv.write(changes)
        except BaseException:
            # Nothing was written: take back everything registered for it, the new numbers
            # above all (a match-all query counts numbered documents as live).
            self._log_sizes.pop(opstamp, None)
            self._log_garbage.pop(opstamp, None)
            self.bases.pop(opstamp, None)
            for i in range(len(batch.doc_ids)):
                self.stats.unnumber(base + i)
            raise
        self.last_opstamp = opstamp
        self.next_docnum = base + len(batch.doc_ids)
        self._stats_seq += 1  # odd: the statistics are changing
        try:
            if removed.docnums:  # only once the batch is durable
                self.stats.remove_batch(removed.field_totals, len(removed.docnums), removed.prefix_counts)
                for docnum in removed.docnums:
                    self.stats.unnumber(docnum)
            self.stats.add_batch(batch.field_totals, len(batch.doc_ids), batch.block_prefixes, batch.blocks)
            for i, typed in enumerate(batch.typed):
                if typed:
                    self.values.add(base + i, typed)
        finally:
            self._stats_seq += 1
        self.cache.invalidate(touched)
        return opstamp

    def _remove_docs(self, ov: _Overlay, touched: set, doc_ids: list[str]) -> "_Removal":
        """Take stored documents out of the blocks their T entries name, for the whole batch
        at once: each block is read once (one multi_get) and rewritten once, without all of
        the batch's documents it held. Re-indexing documents that came in together (one
        old batch, so the same blocks) then costs a block per (field, term), not per
        (document, term) each with its own read. Runs first in apply: the overlay is empty."""
        ids = list(dict.fromkeys(doc_ids))  # a document both deleted and re-added goes once
        t_keys = [K.doc_terms_key(d) for d in ids]
        d_keys = [K.doc_key(d) for d in ids]
        raws = self.kv.multi_get(t_keys)
        stored = self.kv.multi_get(d_keys)
        out = _Removal()
        locals_of: dict[bytes, list[int]] = {}  # old block key -> local numbers leaving it
        garbage = 0
        for t_key, d_key, raw, doc in zip(t_keys, d_keys, raws, stored):
            if raw is None:
                continue
            docnum, opstamp, terms_json = K.split_doc_terms_value(raw)
            local = docnum - self.bases[opstamp]
            tail = K.SEP + K.opstamp_bytes(opstamp)  # a block key: term prefix + opstamp
            indexed, _ = parse_indexed(terms_json)
            out.docnums.append(docnum)
            # Bytes of stored values this removal supersedes (what MongoDB's log then holds
            # as history until a compaction); each block below counts once per batch, as
            # only a batch's last value of a key is logged.
            garbage += len(raw) + len(doc or b"")
            add_field_totals(out.field_totals, indexed)
            for field, _, terms in indexed:
                field_prefix = K.POSTING + field.encode() + K.SEP  # keys.block_key, inlined: ~100 terms a document
                for term in terms:
                    block_key = field_prefix + term.encode() + tail
                    leaving = locals_of.get(block_key)
                    if leaving is None:
                        locals_of[block_key] = [local]
                    else:
                        leaving.append(local)
            ov.put(t_key, None)
            ov.put(d_key, None)
        block_keys = list(locals_of)
        counts = out.prefix_counts
        for block_key, block in zip(block_keys, self.kv.multi_get(block_keys)):
            leaving = locals_of[block_key]
            prefix = block_key[:-8]
            counts[prefix] = counts.get(prefix, 0) + len(leaving)
            if block is not None:
                garbage += len(block)
                ov.put(block_key, block_without(block, leaving))
        touched.update(counts)
        self._batch_garbage += garbage
        return out

    # ---------------------------------------------------------- change log
    def _log(self):
        """(log key, opstamp, columnar blob) of the change log, oldest first."""
        for log_key, value in self.kv.scan(K.CHANGE_LOG, K.upper_bound(K.CHANGE_LOG)):
            yield log_key, K.split_change_log_key(log_key)[0], value

    def _oldest_log(self, limit: int) -> tuple[list[bytes], list[bytes]]:
        """(log keys, blobs) of the oldest whole opstamps, about `limit` entries.

        Point reads of the opstamps known to be pending, not a scan of the log's key
        range: once drained, that range is full of deletion tombstones, and scanning
        past them cost ~33 ms per idle drain cycle (stalling the shard's searches)."""
        log_keys, blobs, count = [], [], 0
        for opstamp in sorted(list(self._log_sizes)):  # a copy: applies on other threads add entries
            log_key = K.change_log_key(opstamp, b"")
            blob = self.kv.get(log_key)
            if blob is None:  # registered by an apply not yet written: stop, to keep opstamp order
                break
            n = columnar_count(blob)
            if log_keys and count + n > limit:
                break
            log_keys.append(log_key)
            blobs.append(blob)
            count += n
        return log_keys, blobs

    def collect_changes(self, limit: int) -> tuple[list[tuple[bytes, bytes | None]], list[bytes]]:
        """The oldest change-log entries (whole opstamps, about `limit` keys) as
        (key, value) pairs in write order, read from the store: (entries, log keys)."""
        log_keys, blobs = self._oldest_log(limit)
        return [e for blob in blobs for e in decode_entries(blob)], log_keys

    def collect_chunks(self, limit: int, chunk_entries_max: int) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
        """Like collect_changes, but as MongoDB chunk payloads (entries, postings, blob), cut
        from the log entries as they are: at most `chunk_entries_max` postings each (a
        posting block counts its postings, any other entry 1)."""
        log_keys, blobs = self._oldest_log(limit)
        chunks = [c for blob in blobs
                  for c in split_columnar(blob, chunk_entries_max, weights=columnar_weights(blob, K.POSTING[0]))]
        return chunks, log_keys

    def garbage_of(self, log_keys: list[bytes]) -> int:
        """Bytes of earlier values that the entries of these log keys supersede."""
        return sum(self._log_garbage.get(K.split_change_log_key(key)[0], 0) for key in log_keys)

    def ack_changes(self, log_keys: list[bytes]) -> None:
        """Clear exactly the drained log entries; a key dirtied again since keeps its newer entry."""
        if log_keys:
            self.kv.write({key: None for key in log_keys})
            for key in log_keys:
                opstamp = K.split_change_log_key(key)[0]
                self._log_sizes.pop(opstamp, None)
                self._log_garbage.pop(opstamp, None)

    def persisted_upto(self) -> int:
        """Highest opstamp whose every change is persisted."""
        stamps = list(self._log_sizes)  # a copy: applies on other threads add entries
        return min(stamps) - 1 if stamps else self.last_opstamp

    def pending_changes(self) -> int:
        """Keys written but not yet persisted (dirty terms and documents)."""
        return sum(list(self._log_sizes.values()))

    def restore(self, entries: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Replay mirrored entries (from MongoDB chunks, oldest first) into the store."""
        changes: dict[bytes, bytes | None] = {}
        for key, value in entries:
            changes[key] = value
            if len(changes) >= 20_000:
                self.kv.write(changes)
                changes = {}
        if changes:
            self.kv.write(changes)
        # Continue opstamps after the highest applied batch, so the tracker's
        # persisted watermarks stay monotonic.
        top = max((decode_u64(v) for _, v in self.kv.scan(K.APPLIED, K.upper_bound(K.APPLIED))), default=0)
        self.last_opstamp = max(self.last_opstamp, top)
        # Whatever snapshot there was describes other data: gone with this same write.
        self.kv.write({K.LAST_OPSTAMP: encode_u64(self.last_opstamp), K.SNAPSHOT: None})
        self.snapshot_opstamp = -1
        self._stats_seq += 1
        try:
            self._load()
        finally:
            self._stats_seq += 1
        self.cache.invalidate()

    def is_empty(self) -> bool:
        for _ in self.kv.scan(b"", K.INTERNAL):
            return False
        return True

    # ---------------------------------------------------------------- reads
    def stats_version(self) -> list | None:
        """[epoch, sequence] of the statistics now, or None while an apply is changing them.
        Read it before and after reading statistics: equal means they were read whole."""
        seq = self._stats_seq
        return None if seq % 2 else [self.epoch, seq]

    def doc_count(self) -> int:
        return self.stats.docs

    def get_document(self, doc_id: str) -> bytes | None:
        return self.kv.get(K.doc_key(doc_id))

    def get_documents(self, doc_ids: list[str]) -> list[bytes | None]:
        return self.kv.multi_get([K.doc_key(d) for d in doc_ids])

    def field_stats(self, fields: list[str]) -> dict[str, tuple[int, int]]:
        """field -> (documents having it, total length)."""
        return {f: tuple(self.stats.fields.get(f, (0, 0))) for f in fields}

    def doc_freqs(self, pairs: list[tuple[str, str]]) -> list[int]:
        df = self.stats.df
        return [df.get((f, t), 0) for f, t in pairs]

    def expand_prefix(self, field: str, prefix: str, limit: int) -> list[str]:
        """First `limit` terms of `field` starting with `prefix`, in byte (= code point) order."""
        terms = self.stats.sorted_terms(field)
        out = []
        for i in range(bisect.bisect_left(terms, prefix), len(terms)):
            if not terms[i].startswith(prefix) or len(out) >= limit:
                break
            out.append(terms[i])
        return out

    def _blocks(self, prefix: bytes) -> Iterator[tuple[int, bytes]]:
        """(base doc number, block) of one term's posting blocks, oldest batch first."""
        bases = self.bases
        for key, value in self.kv.scan(prefix, K.upper_bound(prefix)):
            yield bases[K.unpack_u64(key, len(key) - 8)], value

    def postings(self, field: str, term: str) -> dict[int, tuple[int, int, list[int]]]:
        """doc number -> (tf, field length, positions) for one term (phrase matching)."""
        out = {}
        for base, block in self._blocks(K.term_prefix(field, term)):
            for docnum, tf, length, positions in block_postings(block, base):
                out[docnum] = (tf, length, positions)
        return out

    def posting_arrays(self, field: str, term: str):
        """(doc numbers, tf, dl) numpy arrays of one posting list, from a cache of
        lists read from RocksDB (the search path only; persistence never reads it)."""
        prefix = K.term_prefix(field, term)
        hit = self.cache.get(prefix)
        if hit is not None:
            return hit
        generation = self.cache.generation
        numbers, tfs, dls = [], [], []
        for base, block in self._blocks(prefix):
            docs, tf, dl, _ = block_columns(block)
            numbers.append(docs.astype(np.int64) + base)
            tfs.append(tf)
            dls.append(dl)
        if numbers:
            arrays = (np.concatenate(numbers), np.concatenate(tfs).astype(np.float64),
                      np.concatenate(dls).astype(np.float64))
        else:
            arrays = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
        self.cache.put(prefix, arrays, generation)  # unless a write happened meanwhile
        return arrays

    def fields(self) -> list[str]:
        return sorted(self.stats.fields)

    def term_count(self, field: str) -> int:
        return self.stats.term_counts.get(field, 0)

    def terms(self, field: str) -> list[str]:
        return list(self.stats.sorted_terms(field))

    def data_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every mirrored key and value (for verify)."""
        yield from self.kv.scan(b"", K.INTERNAL)


def posting_lists(items: Iterable[tuple[bytes, bytes]]) -> dict[tuple[str, str], dict[str, tuple]]:
    """(field, term) -> {doc id: (tf, field length, positions)} from a shard's mirrored
    entries (RocksDB's or MongoDB's replayed chunks): how verify-style checks and tests
    compare posting lists without depending on how postings are grouped into blocks."""
    items = list(items)
    ids = {K.split_doc_terms_value(v)[0]: k[1:].decode() for k, v in items if k[:1] == K.DOC_TERMS}
    bases = dict(K.split_batch_base(k, v)[:2] for k, v in items if k[:1] == K.BATCH_BASE)
    out: dict[tuple[str, str], dict[str, tuple]] = {}
    for key, value in items:
        if key[:1] != K.POSTING:
            continue
        field, term, opstamp = K.split_block_key(key)
        lists = out.setdefault((field, term), {})
        for docnum, tf, length, positions in block_postings(value, bases[opstamp]):
            lists[ids[docnum]] = (tf, length, positions)
    return out
