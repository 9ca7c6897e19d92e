"""A shard's derived state -- statistics, document numbers, batch bases, doc-value columns --
built by a scan of its stored entries, or read back from its snapshot.

The scan takes time proportional to the index. A snapshot of the state, written when the
shard is idle, lets a shard open in time proportional to the snapshot's size instead. It
is used only if it was taken at the store's last opstamp: every batch moves that opstamp
in its own atomic write, so any later write makes an older snapshot stale, and a crash
can never pair a snapshot with other data. Pickle is safe here: the value is written by
this code into the shard's own RocksDB (never mirrored, never from a user), like the rest
of the shard's files.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass

import numpy as np

from raysearch.analysis.analyzer import ALL_FIELD
from raysearch.index import keys as K
from raysearch.index.all_field import expand_terms
from raysearch.index.batch import parse_indexed
from raysearch.index.doc_values import DocValues
from raysearch.index.shard_stats import ShardStats
from raysearch.storage.kv import KV

log = logging.getLogger(__name__)
SNAPSHOT_FORMAT = 1


@dataclass
class DerivedState:
    stats: ShardStats
    values: DocValues
    bases: dict[int, int]  # opstamp -> base doc number of its batch
    next_docnum: int


def text_fields(kv: KV) -> set[str]:
    """The text fields a derived `_all` is made of (F keys; none where `_all` is stored)."""
    return {key[1:].decode() for key, _ in kv.scan(K.TEXT_FIELD, K.upper_bound(K.TEXT_FIELD))}


def scan(kv: KV) -> DerivedState:
    """The state derived from every stored T entry and batch base."""
    stats, values = ShardStats(), DocValues()
    sources = text_fields(kv)
    for key, raw in kv.scan(K.DOC_TERMS, K.upper_bound(K.DOC_TERMS)):
        docnum, _, terms = K.split_doc_terms_value(raw)
        stats.number(key[1:].decode(), docnum)
        indexed, typed = parse_indexed(terms)
        if sources:
            indexed = expand_terms(indexed, sources)
            stats.set_all_lengths(docnum, [next((n for f, n, _ in indexed if f == ALL_FIELD), 0)])
        stats.add(indexed, 1)
        if typed:
            values.add(docnum, typed)
    bases: dict[int, int] = {}
    next_docnum = 0
    for key, raw in kv.scan(K.BATCH_BASE, K.upper_bound(K.BATCH_BASE)):
        opstamp, base, count = K.split_batch_base(key, raw)
        bases[opstamp] = base
        next_docnum = max(next_docnum, base + count)
    return DerivedState(stats, values, bases, next_docnum)


def encode_snapshot(state: DerivedState, opstamp: int) -> bytes:
    """The state as of `opstamp`; the caller keeps writes out meanwhile."""
    stats = state.stats
    live = np.frombuffer(bytes(stats.live), dtype=np.bool_)
    return pickle.dumps({
        "format": SNAPSHOT_FORMAT, "opstamp": opstamp,
        "df": stats.df, "fields": stats.fields, "term_counts": stats.term_counts,
        "docs": stats.docs, "doc_ids": stats.doc_ids, "live": bytes(stats.live),
        "bases": state.bases, "next_docnum": state.next_docnum,
        "values": state.values.export(live),
        "all_lengths": stats.all_lengths[:len(stats.doc_ids)].tobytes(),
    }, protocol=pickle.HIGHEST_PROTOCOL)


def decode_snapshot(raw: bytes | None, opstamp: int) -> DerivedState | None:
    """The snapshot's state if it was taken at `opstamp` and reads whole, else None (scan)."""
    if raw is None:
        return None
    try:
        snap = pickle.loads(raw)
        if snap.get("format") != SNAPSHOT_FORMAT or snap["opstamp"] != opstamp:
            return None
        stats = ShardStats()
        stats.df, stats.fields, stats.term_counts = snap["df"], snap["fields"], snap["term_counts"]
        stats.docs, stats.doc_ids, stats.live = snap["docs"], snap["doc_ids"], bytearray(snap["live"])
        # (snapshots of shards whose `_all` is stored hold no lengths: they need none)
        stats.all_lengths = np.frombuffer(snap.get("all_lengths", b""), dtype=np.int32).copy()
        return DerivedState(stats, DocValues.from_export(snap["values"]), snap["bases"], snap["next_docnum"])
    except Exception as exc:  # noqa: BLE001 - unreadable: the scan rebuilds everything (a new snapshot follows)
        log.warning("shard snapshot unreadable (%s): rebuilding the statistics by a scan", exc)
        return None
