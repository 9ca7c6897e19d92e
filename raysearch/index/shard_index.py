"""One shard's inverted index over a KV store: the writer (apply, with its removals) and
the reads a query makes; beside it, by concern: statistics (shard_stats.py), the posting
cache (posting_cache.py), the change log (change_log.py), the derived state and its
snapshot (derived.py).

Pure logic (no Ray): the ShardStore actor wraps it, unit tests run it on MemoryKV.
Every write of a sub-batch -- documents, postings, statistics, the applied-batch
marker and a change-log entry per touched key -- goes into ONE atomic KV write,
so a crash leaves either all of a batch or none of it, and nothing written can
escape persistence (the change log is drained from this same store).
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import time
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import repeat
from typing import Iterable, Iterator

import numpy as np
import orjson

from raysearch.config import POSTING_CACHE_MEMORY_SHARE, POSTING_CACHE_MIN_POSTINGS, POSTING_CACHE_SHARE
from raysearch.index import keys as K
from raysearch.index.batch import ShardBatch, add_field_totals, parse_indexed
from raysearch.index.change_log import ChangeLog
from raysearch.index.dead_postings import DeadPostings
from raysearch.index.derived import DerivedState, decode_snapshot, encode_snapshot
from raysearch.index.derived import scan as scan_derived
from raysearch.index.derived import text_fields
from raysearch.index.all_field import expand_terms, length_of, merge_arrays, merge_postings
from raysearch.analysis.analyzer import ALL_FIELD
from raysearch.index.posting_cache import PostingArrays, PostingCache
from raysearch.index.ann import AnnIndex
from raysearch.index import fuzzy_terms
from raysearch.index.vectors import VectorStore, decode_vectors, split_vector_entry, vector_entry
from raysearch.index.encoding import (
    blocks_columns,
    block_postings,
    decode_u64,
    encode_columns,
    encode_u64,
)
from raysearch.storage.kv import KV

log = logging.getLogger(__name__)

# Dead documents' postings are purged from their batches' blocks while more than this share
# of the documents the shard's blocks hold is dead (index/dead_postings.py). The purge rides on an
# apply's atomic write: one opstamp, one change-log entry, mirrored to MongoDB like any write.
# A budget, as Lucene's deletesPctAllowed (20-50 %, 33 by default): lower keeps less dead
# weight under a stream of updates and costs more rewriting (benchmarks/updates.py, 64k
# documents, 20k random updates: 5 % ran at 0.30x the insert rate, 25 % at the figure in the
# README); once writes stop, the idle share below applies.
PURGE_DEAD_SHARE = 0.25
# ...and, once the shard is idle, by writes of their own down to this share (ShardIndex.purge).
PURGE_IDLE_SHARE = 0.01
PURGE_MARK = "~purge"  # the A entry holding the last purge's opstamp (batch keys never start with ~)



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
    batches: set[int] = dataclass_field(default_factory=set)  # opstamps of the batches they came in
    field_totals: dict[str, list[int]] = dataclass_field(default_factory=dict)  # field -> [documents, total length]
    term_counts: dict[tuple[str, str], int] = dataclass_field(default_factory=dict)  # (field, term) -> documents leaving it


class ShardIndex:
    def __init__(self, kv: KV, cache_postings: int | None = None):
        self.kv = kv
        kv.keep_apart([K.SNAPSHOT])  # tens of MB in one value: no seek may read it (storage/rocks.py)
        self.last_opstamp = decode_u64(kv.get(K.LAST_OPSTAMP))
        self.snapshot_opstamp = -1  # opstamp of the snapshot on disk (-1: none usable)
        # The derived state, from the snapshot if it is of this very opstamp, else by a scan.
        state = decode_snapshot(kv.get(K.SNAPSHOT), self.last_opstamp)
        self.opened_from = "snapshot" if state is not None else "scan"
        if state is not None:
            self.snapshot_opstamp = self.last_opstamp
        self._adopt(state or scan_derived(kv))
        self.vectors = self._scan_vectors()
        self._cache_fixed = cache_postings is not None  # else sized from the shard as it grows
        self.cache = PostingCache(cache_postings if self._cache_fixed else self._cache_bound())
        # Version of the statistics (df, field lengths, dictionary), for an ingress that keeps
        # summed statistics between queries: a seqlock (odd while an apply changes them) under
        # an epoch drawn per open, so a restarted shard never repeats an earlier version.
        self.epoch = os.urandom(6).hex()
        self._stats_seq = 0
        self.log = ChangeLog(kv)  # what persistence has yet to drain (index/change_log.py)
        stored_id = kv.get(K.STORE_ID)
        if stored_id is None:
            stored_id = os.urandom(8).hex().encode()
            kv.write({K.STORE_ID: stored_id})
        self.store_id = stored_id.decode()
        self._batch_garbage = 0
        self._fuzzy_buckets: dict[str, tuple] = {}  # field -> (its sorted terms, them by length)

    # ---------------------------------------------------- derived state
    def _adopt(self, state: DerivedState) -> None:
        self.stats, self.values, self.bases, self.next_docnum = state.stats, state.values, state.bases, state.next_docnum
        # The text fields `_all` is derived from (index/all_field.py); none where it is stored.
        # Replaced, never changed in place: a query iterates the set it read.
        self.all_sources: frozenset[str] = frozenset(text_fields(self.kv))
        self.dead = DeadPostings(self.bases, self.next_docnum, self.stats.live)  # index/dead_postings.py

    def _scan_vectors(self) -> VectorStore:
        """The vector columns, from the V entries (not in the snapshot: they are large, and a
        scan of fixed-size rows is quick)."""
        store = VectorStore()
        for _, raw in self.kv.scan(K.VECTORS, K.upper_bound(K.VECTORS)):
            docnum, payload = split_vector_entry(raw)
            store.add(docnum, payload)
        return store

    def extend_ann(self, field: str, similarity: str, min_vectors: int, budget: int) -> bool:
        """Grow the ANN graph of a vector column by up to `budget` document numbers; True if
        anything changed. A graph whose keys are a third removed documents is built again to
        the side (`column.ann_next`, a budget at a time) and swapped in once it has caught up.
        Runs on a background thread beside searches and applies (index/ann.py)."""
        column = self.vectors.column(field)
        if column is None or column.count() < min_vectors:
            return False
        n = len(self.stats.doc_ids)
        matrix, _, present, row_of = column.arrays(n)
        live = self.stats.live_mask(n)
        ann = column.ann
        if ann is None or ann.similarity != similarity:
            column.ann = ann = AnnIndex(column.dims, similarity)  # partial is fine: rows beyond are exact
        building = column.ann_next
        if building is None and ann.keys >= min_vectors:
            dead = ann.keys - int((present[:ann.covered] & live[:ann.covered]).sum())
            if dead * 3 > ann.keys:
                column.ann_next = building = AnnIndex(column.dims, similarity)
        if building is not None:
            building.extend(matrix, row_of, present, live, min(n, building.covered + budget))
            if building.covered >= n:
                column.ann, column.ann_next = building, None
            return True
        if ann.covered >= n:
            return False
        ann.extend(matrix, row_of, present, live, min(n, ann.covered + budget))
        return True

    def vector_columns(self) -> dict[str, dict]:
        """field -> its vectors and how far its ANN graph has come (covered: the document
        numbers considered for the graph; those above are searched exactly), for /stats:
        whether a kNN search still scans a tail, and whether a graph is being built again."""
        n = len(self.stats.doc_ids)
        out = {}
        for field, column in list(self.vectors.columns.items()):
            ann, building = column.ann, column.ann_next
            out[field] = {"vectors": column.count(), "dims": column.dims,
                          "graph": None if ann is None else {"similarity": ann.similarity, "keys": len(ann),
                                                             "covered": min(ann.covered, n), "documents": n},
                          "rebuilding": building is not None}
        return out

    def snapshot_bytes(self) -> bytes:
        """The derived state as of last_opstamp (index/derived.py); the caller keeps writes out."""
        return encode_snapshot(DerivedState(self.stats, self.values, self.bases, self.next_docnum), self.last_opstamp)

    def write_snapshot(self) -> int:
        """Snapshot the derived state (no writes may run meanwhile); returns its opstamp."""
        if self.snapshot_opstamp != self.last_opstamp:
            self.kv.write({K.SNAPSHOT: self.snapshot_bytes()})
            self.snapshot_opstamp = self.last_opstamp
        return self.snapshot_opstamp

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
        vectors = batch.vectors if any(batch.vectors) else ()
        removed = self._remove_docs(overlay, [*batch.deletes, *batch.doc_ids],
                                    with_vectors=bool(self.vectors) or bool(vectors))
        base = self.next_docnum
        changes = overlay.changes
        held_after, garbage = self.dead.purge_into(self.kv, changes, self.stats.live, PURGE_DEAD_SHARE)
        self._batch_garbage += garbage
        for i, (doc_id, stored, terms) in enumerate(zip(batch.doc_ids, batch.stored, batch.terms)):
            changes[K.doc_terms_key(doc_id)] = K.doc_terms_value(base + i, stamp, terms)
            changes[K.doc_key(doc_id)] = stored
        for i, (doc_id, payload) in enumerate(zip(batch.doc_ids, vectors)):
            if payload:
                changes[K.vectors_key(doc_id)] = vector_entry(base + i, payload)
        new_sources = set(batch.text_fields) - self.all_sources
        for name in new_sources:  # (a field with no postings yet adds nothing to `_all`)
            changes[K.text_field_key(name)] = b""
        if new_sources:
            self.all_sources = self.all_sources | new_sources
        changes.update(zip([prefix + stamp for prefix in batch.block_prefixes], batch.blocks))  # keys.block_key
        if batch.doc_ids:
            changes[K.batch_base_key(opstamp)] = K.batch_base_value(base, len(batch.doc_ids))
        if batch.block_prefixes:
            changes[K.batch_blocks_key(opstamp)] = K.batch_blocks_value(len(batch.doc_ids), batch.block_prefixes)
        changes[K.applied_key(batch_key)] = encode_u64(opstamp)
        self._log_and_stamp(opstamp, changes)
        # Numbered (not yet live) before their postings become visible to searches: a
        # query ignores numbers beyond those it saw when it started, and skips dead ones.
        self.bases[opstamp] = base
        self.stats.number_batch(batch.doc_ids, base)
        self.stats.set_all_lengths(base, batch.all_lengths)
        try:
            self.kv.write(changes)
        except BaseException:
            # Nothing was written: take back everything registered for it, the new numbers
            # above all.
            self.log.unregister(opstamp)
            self.bases.pop(opstamp, None)
            self.stats.unnumber_batch(base, len(batch.doc_ids))
            raise
        self.last_opstamp = opstamp
        self.next_docnum = base + len(batch.doc_ids)
        self.dead.batch_added(opstamp, len(batch.doc_ids))
        self._stats_seq += 1  # odd: the statistics are changing
        try:
            # The old versions die before the new ones live: a query's live set (read once)
            # may then miss a document being re-indexed, never hold it twice.
            if removed.docnums:  # only once the batch is durable
                self.stats.remove_batch(removed.field_totals, len(removed.docnums), removed.term_counts)
                for docnum in removed.docnums:
                    self.stats.unnumber(docnum)
                    if self.vectors:
                        self.vectors.remove(docnum)  # its row is reused later (vectors.py)
            # purged batches first: their blocks now hold exactly the documents live before
            # this batch; then this batch's removals, each a held document turned dead
            for purged, alive in held_after.items():
                self.dead.account(purged, alive, alive)
            self.dead.removed(removed.batches, len(removed.docnums))
            self.stats.revive_batch(base, len(batch.doc_ids))
            all_keys = [(ALL_FIELD, term) for term in batch.all_terms]
            self.stats.add_batch(batch.field_totals, len(batch.doc_ids), batch.block_prefixes, batch.blocks,
                                 batch.block_terms, (all_keys, batch.all_counts))
            for i, typed in enumerate(batch.typed):
                if typed:
                    self.values.add(base + i, typed)
            if removed.docnums:  # removed versions' doc values, once they are many (doc_values.py)
                self.values.compact(self.stats.live)
            for i, payload in enumerate(vectors):
                if payload:
                    self.vectors.add(base + i, payload)
        finally:
            self._stats_seq += 1
        # Lists that gain this batch's documents go stale; removed documents need nothing:
        # their numbers are dead, and every query skips dead numbers.
        self.cache.invalidate(batch.block_prefixes)
        if batch.all_terms:  # derived `_all` lists are cached like stored ones
            self.cache.invalidate([K.term_prefix(ALL_FIELD, term) for term in batch.all_terms])
        if not self._cache_fixed:
            self.cache.resize(self._cache_bound())
        return opstamp

    def _cache_bound(self) -> int:
        return posting_cache_bound(sum(length for _, length in self.stats.fields.values()), _memory_bytes())

    def _remove_docs(self, ov: _Overlay, doc_ids: list[str], with_vectors: bool = False) -> "_Removal":
        """Take stored documents out, for the whole batch at once: their T, D and V entries
        go, their postings stay (a number without a T entry is dead: searches skip it by
        the live set, and a purge drops it from its batch's blocks later: index/dead_postings.py).
        An update then costs what an insert does plus three deletes, wherever its old
        version sits; rewriting every block its T entry names cost ~100 block reads and
        writes per document. Runs first in apply: the overlay is empty."""
        ids = list(dict.fromkeys(doc_ids))  # a document both deleted and re-added goes once
        t_keys = [K.doc_terms_key(d) for d in ids]
        d_keys = [K.doc_key(d) for d in ids]
        raws = self.kv.multi_get(t_keys)
        stored = self.kv.multi_get(d_keys)
        out = _Removal()
        counts = out.term_counts
        garbage = 0
        for t_key, d_key, raw, doc in zip(t_keys, d_keys, raws, stored):
            if raw is None:
                continue
            docnum, opstamp, terms_json = K.split_doc_terms_value(raw)
            indexed, _ = parse_indexed(terms_json)
            if self.all_sources:
                indexed = expand_terms(indexed, self.all_sources)
            out.docnums.append(docnum)
            out.batches.add(opstamp)
            # Bytes of stored values this removal supersedes (what MongoDB's log then holds
            # as history until a compaction).
            garbage += len(raw) + len(doc or b"")
            add_field_totals(out.field_totals, indexed)
            for field, _, terms in indexed:
                for key in zip(repeat(field), terms):  # ~100 terms a document: tuples made in C
                    counts[key] = counts.get(key, 0) + 1
            ov.put(t_key, None)
            ov.put(d_key, None)
            if with_vectors:  # (a shard that never held vectors logs no deletes of them)
                ov.put(K.vectors_key(K.doc_id_of(t_key)), None)
        self._batch_garbage += garbage
        return out

    def purge(self, share: float = PURGE_IDLE_SHARE) -> int:
        """Purge dead postings by a write of its own while more than `share` of what the
        blocks hold is dead (the shard's idle loop calls it, so an index that stops
        changing ends up nearly free of dead postings); returns how many batches it purged.
        The caller keeps other writes out. Its opstamp is recorded under an A entry (as a
        batch's is), so a restore continues opstamps after it."""
        opstamp = self.last_opstamp + 1
        changes: dict[bytes, bytes | None] = {}
        held_after, self._batch_garbage = self.dead.purge_into(self.kv, changes, self.stats.live, share, max_batches=1)
        if not changes:
            return 0
        changes[K.applied_key(PURGE_MARK)] = encode_u64(opstamp)
        self._log_and_stamp(opstamp, changes)
        try:
            self.kv.write(changes)
        except BaseException:
            self.log.unregister(opstamp)
            raise
        self.last_opstamp = opstamp
        for purged, alive in held_after.items():
            self.dead.account(purged, alive, alive)
        return len(held_after)

    def _log_and_stamp(self, opstamp: int, changes: dict) -> None:
        """Into a write's changes: its change-log entry (one per opstamp, naming every data key
        the write holds, with their values, columnar: it is the MongoDB chunk payload already,
        so draining never re-reads the keys it names) and the new last opstamp; registered
        with the log (the caller unregisters it if the write fails)."""
        logged = list(changes)
        changes[K.change_log_key(opstamp, b"")] = encode_columns(logged, list(changes.values()))
        changes[K.LAST_OPSTAMP] = encode_u64(opstamp)
        self.log.register(opstamp, len(logged), self._batch_garbage)

    def dead_share(self) -> tuple[int, int]:
        """(dead documents the blocks still hold, documents the blocks hold)."""
        return self.dead.share()

    # ---------------------------------------------------------- change log
    # (index/change_log.py; these are what the ShardStore serves the PersistenceActor)
    def collect_changes(self, limit: int) -> tuple[list[tuple[bytes, bytes | None]], list[bytes]]:
        return self.log.collect_changes(limit)

    def collect_chunks(self, limit: int, chunk_entries_max: int) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
        return self.log.collect_chunks(limit, chunk_entries_max)

    def garbage_of(self, log_keys: list[bytes]) -> int:
        return self.log.garbage_of(log_keys)

    def ack_changes(self, log_keys: list[bytes]) -> None:
        self.log.ack(log_keys)

    def persisted_upto(self) -> int:
        return self.log.persisted_upto(self.last_opstamp)

    def pending_changes(self) -> int:
        return self.log.pending()

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
            self._adopt(scan_derived(self.kv))
            self.vectors = self._scan_vectors()
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

    def get_documents(self, doc_ids: list[str]) -> list[bytes | None]:
        """Stored documents as search hits show them (without their vectors, as Elasticsearch 9
        leaves them out of hits' `_source`: kilobytes of numbers no reader of a page wants)."""
        return self.kv.multi_get([K.doc_key(d) for d in doc_ids])

    def get_document(self, doc_id: str) -> bytes | None:
        """A stored document with its vectors put back (GET of one document)."""
        raw = self.kv.get(K.doc_key(doc_id))
        if raw is None or not self.vectors:
            return raw
        entry = self.kv.get(K.vectors_key(doc_id))
        if entry is None:
            return raw
        doc = orjson.loads(raw)
        for name, vector in decode_vectors(split_vector_entry(entry)[1]).items():
            doc[name] = vector.tolist()
        return orjson.dumps(doc)

    def documents_page(self, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        """(id, stored document with its vectors) of up to `limit` documents, in id order,
        after the id `after` (None: from the first): a reindex reads a shard page by page."""
        start = K.doc_key(after) + b"\0" if after is not None else K.DOC
        stop = bytes([K.DOC[0] + 1])
        out = []
        for key, value in self.kv.scan(start, stop):
            doc_id = key[len(K.DOC):].decode()
            raw = self.get_document(doc_id) if self.vectors else value
            if raw is not None:
                out.append((doc_id, raw))
            if len(out) >= limit:
                break
        return out

    def docnum_mask(self, doc_ids, n: int) -> np.ndarray:
        """Booleans over numbers < n: the numbers of those of `doc_ids` this shard holds."""
        mask = np.zeros(n, dtype=bool)
        numbered = self.stats.doc_ids
        for doc_id, raw in zip(doc_ids, self.kv.multi_get([K.doc_terms_key(d) for d in doc_ids])):
            if raw is not None:
                docnum = K.split_doc_terms_value(raw)[0]
                if docnum < n and numbered[docnum] == doc_id:
                    mask[docnum] = True
        return mask

    def field_stats(self, fields: list[str]) -> dict[str, tuple[int, int]]:
        """field -> (documents having it, total length)."""
        return {f: tuple(self.stats.fields.get(f, (0, 0))) for f in fields}

    def doc_freqs(self, pairs: list[tuple[str, str]]) -> list[int]:
        df = self.stats.df
        return [df.get((f, t), 0) for f, t in pairs]

    def term_count_total(self) -> int:
        """(field, term) pairs with documents, over every field."""
        return len(self.stats.df)

    def term_dictionary(self) -> dict[str, tuple[list[str], list[int]]]:
        """field -> (its terms, their document frequencies): the whole dictionary."""
        items = list(self.stats.df.items())  # one C-level copy: an apply on another thread may go on
        out: dict[str, tuple[list[str], list[int]]] = {}
        for (f, t), n in items:
            part = out.get(f)
            if part is None:
                part = out[f] = ([], [])
            part[0].append(t)
            part[1].append(n)
        return out

    def expand_prefix(self, field: str, prefix: str, limit: int) -> list[str]:
        """First `limit` terms of `field` starting with `prefix`, in byte (= code point) order."""
        terms = self.stats.sorted_terms(field)
        out = []
        for i in range(bisect.bisect_left(terms, prefix), len(terms)):
            if not terms[i].startswith(prefix) or len(out) >= limit:
                break
            out.append(terms[i])
        return out

    def expand_fuzzy(self, field: str, term: str, edits: int, limit: int) -> list[tuple[str, int]]:
        """Terms of `field` within `edits` edits of `term`: the best `limit` (search/fuzzy.py)."""
        terms = self.stats.sorted_terms(field)
        cached = self._fuzzy_buckets.get(field)
        if cached is None or cached[0] is not terms:  # the sorted list is rebuilt on any change
            cached = self._fuzzy_buckets[field] = (terms, fuzzy_terms.length_buckets(terms))
        return fuzzy_terms.candidates(cached[1], term, edits, limit)

    def _blocks(self, prefix: bytes) -> Iterator[tuple[int, bytes]]:
        """(base doc number, block) of one term's posting blocks, oldest batch first."""
        bases = self.bases
        for key, value in self.kv.scan(prefix, K.upper_bound(prefix)):
            yield bases[K.unpack_u64(key, len(key) - 8)], value

    def postings(self, field: str, term: str) -> dict[int, tuple[int, int, list[int]]]:
        """doc number -> (tf, field length, positions) for one term (phrase matching)."""
        holding = self.derived_all_fields([term]) if field == ALL_FIELD else None
        if holding is not None:
            # every source in sorted order (a field's place sets its range of positions)
            return merge_postings([self.postings(name, term) if name in holding else {}
                                   for name in sorted(self.all_sources)], self.stats.all_lengths)
        out = {}
        for base, block in self._blocks(K.term_prefix(field, term)):
            for docnum, tf, length, positions in block_postings(block, base):
                out[docnum] = (tf, length, positions)
        return out

    def posting_arrays(self, field: str, term: str) -> PostingArrays:
        """(doc numbers, tf, dl) numpy arrays of one posting list, from a cache of
        lists read from RocksDB (the search path only; persistence never reads it)."""
        prefix = K.term_prefix(field, term)
        hit = self.cache.get(prefix)
        if hit is not None:
            return hit
        generation = self.cache.generation
        holding = self.derived_all_fields([term]) if field == ALL_FIELD else None
        if holding is not None:
            # the text fields' lists, read (not cached apart: the merged list is what queries reuse)
            arrays = PostingArrays(*merge_arrays([self._columns(K.term_prefix(name, term))[:2] for name in holding],
                                                 self.stats.all_lengths))
        else:
            arrays = PostingArrays(*self._columns(prefix))
        self.cache.put(prefix, arrays, generation)  # unless a write happened meanwhile
        return arrays

    def rewarm(self, budget_s: float, batch: int = 16) -> int:
        """Read again, into the cache, lists that queries had cached and writes made stale
        (posting_cache.PostingCache.take_dropped), for about `budget_s` seconds; returns how
        many. Called while the shard is idle, so that the first searches after a bulk find
        their hot lists decoded. A write during the read leaves the list uncached, as any read."""
        deadline, read = time.monotonic() + budget_s, 0
        while time.monotonic() < deadline:
            prefixes = self.cache.take_dropped(batch)
            if not prefixes:
                break
            for prefix in prefixes:
                if self.cache.get(prefix) is None:  # a query may have read it meanwhile
                    self.posting_arrays(*K.split_term_prefix(prefix))
                    read += 1
        return read

    def derived_all_fields(self, terms: list[str]) -> list[str] | None:
        """Where `_all` is derived (index/all_field.py): the text fields, sorted, in which some
        live document holds every one of `terms` -- the only lists a derived `_all` reads (a
        term is in one or two of a document's fields, and a scan of a list that is not there
        still costs a seek). None where `_all` is stored."""
        sources = self.all_sources
        if not sources:
            return None
        df = self.stats.df
        return [name for name in sorted(sources) if all(df.get((name, term)) for term in terms)]

    def all_length(self, docnum: int) -> int:
        """A document number's `_all` length, where `_all` is derived."""
        return length_of(self.stats.all_lengths, docnum)

    def _columns(self, prefix: bytes) -> tuple:
        """(doc numbers, tfs, field lengths) of one stored list, read from RocksDB."""
        bases, blocks = [], []
        for base, block in self._blocks(prefix):
            bases.append(base)
            blocks.append(block)
        return blocks_columns(blocks, bases)

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
    compare posting lists without depending on how postings are grouped into blocks, or
    on which dead postings a purge has dropped yet."""
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
            doc_id = ids.get(docnum)
            if doc_id is not None:  # (a dead document's postings wait for a purge)
                lists[doc_id] = (tf, length, positions)
        if not lists:
            del out[(field, term)]
    return out


POSTING_BYTES = 24  # a cached posting: its doc number (int64), tf and field length (float64)


def posting_cache_bound(tokens: int, memory_bytes: int) -> int:
    """Postings a shard's cache may hold: a share of those it holds (its indexed tokens bound
    them from above: a term repeated in a field is one posting), at least a floor so a small
    shard caches all it has, at most what a share of the machine's memory holds. A constant
    was either too small for a large shard (every query decoding its lists again) or idle
    memory on a small one."""
    by_size = max(POSTING_CACHE_MIN_POSTINGS, int(tokens * POSTING_CACHE_SHARE))
    by_memory = int(memory_bytes * POSTING_CACHE_MEMORY_SHARE) // POSTING_BYTES
    return max(0, min(by_size, by_memory))


@functools.cache
def _memory_bytes() -> int:
    """The machine's memory (os.sysconf: Linux and macOS; read once, apply asks after every
    batch); 8 GB where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30
