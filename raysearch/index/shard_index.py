"""One shard's inverted index over a KV store: writes, change log, statistics.

Pure logic (no Ray): the ShardStore actor wraps it, unit tests run it on MemoryKV.
Every write of a sub-batch -- documents, postings, statistics, the applied-batch
marker and a change-log entry per touched key -- goes into ONE atomic KV write,
so a crash leaves either all of a batch or none of it, and nothing written can
escape persistence (the change log is drained from this same store).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Iterator

from raysearch.index import keys as K
from raysearch.index.encoding import (
    decode_field_stats,
    decode_u64,
    encode_field_stats,
    encode_posting,
    encode_u64,
    decode_key_list,
    encode_key_list,
)
from raysearch.storage.kv import KV


@dataclass
class ShardDoc:
    """A document as the shard receives it from an IndexWorker."""

    doc_id: str
    stored: bytes  # JSON of the whole document
    fields: list[tuple[str, int, dict[str, list[int]]]]  # (field, length, term -> positions)


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


class _StatsDelta:
    """Document-frequency and field-statistics changes of one batch, applied with
    one multi-get at the end instead of a read-modify-write per posting."""

    def __init__(self):
        self.terms: dict[tuple[str, str], int] = {}
        self.fields: dict[str, list[int]] = {}
        self.docs = 0

    def term(self, field: str, term: str, delta: int) -> None:
        key = (field, term)
        self.terms[key] = self.terms.get(key, 0) + delta

    def field(self, field: str, docs: int, length: int) -> None:
        acc = self.fields.setdefault(field, [0, 0, 0])
        acc[0] += docs
        acc[1] += length

    def write_into(self, ov: _Overlay, kv: KV) -> None:
        pairs = [p for p, d in self.terms.items() if d]
        df_keys = [K.doc_freq_key(f, t) for f, t in pairs]
        for (field, _), key, old in zip(pairs, df_keys, kv.multi_get(df_keys)):
            before = decode_u64(old)
            after = before + self.terms[(field, _)]
            acc = self.fields.setdefault(field, [0, 0, 0])
            if after <= 0:
                ov.put(key, None)
                acc[2] -= 1 if before > 0 else 0
            else:
                ov.put(key, encode_u64(after))
                acc[2] += 1 if before == 0 else 0
        names = list(self.fields)
        stat_keys = [K.field_stats_key(f) for f in names]
        for name, key, old in zip(names, stat_keys, kv.multi_get(stat_keys)):
            docs, total, distinct = decode_field_stats(old)
            d_docs, d_len, d_distinct = self.fields[name]
            docs, total, distinct = docs + d_docs, total + d_len, distinct + d_distinct
            ov.put(key, encode_field_stats(docs, total, distinct) if docs > 0 else None)
        if self.docs:
            count = decode_u64(kv.get(K.DOC_COUNT)) + self.docs
            ov.put(K.DOC_COUNT, encode_u64(count) if count > 0 else None)


class ShardIndex:
    def __init__(self, kv: KV):
        self.kv = kv
        self.last_opstamp = decode_u64(kv.get(K.LAST_OPSTAMP))

    # ---------------------------------------------------------------- writes
    def apply(self, batch_key: str, docs: Iterable[ShardDoc], deletes: Iterable[str] = ()) -> int:
        """Index `docs` (replacing same ids) and delete `deletes`, atomically.

        Idempotent: a batch key seen before is not applied again, and the
        opstamp of its first application is returned.
        """
        seen = self.kv.get(K.applied_key(batch_key))
        if seen is not None:
            return decode_u64(seen)
        opstamp = self.last_opstamp + 1
        overlay = _Overlay(self.kv)
        stats = _StatsDelta()
        for doc_id in deletes:
            self._remove_doc(overlay, stats, doc_id)
        for doc in docs:
            self._remove_doc(overlay, stats, doc.doc_id)
            self._add_doc(overlay, stats, doc)
        stats.write_into(overlay, self.kv)
        overlay.put(K.applied_key(batch_key), encode_u64(opstamp))
        changes = overlay.changes
        # One change-log entry per opstamp, naming every data key the batch wrote.
        changes[K.change_log_key(opstamp, b"")] = encode_key_list(list(changes))
        changes[K.LAST_OPSTAMP] = encode_u64(opstamp)
        self.kv.write(changes)
        self.last_opstamp = opstamp
        return opstamp

    def _remove_doc(self, ov: _Overlay, stats: "_StatsDelta", doc_id: str) -> bool:
        raw = ov.get(K.doc_terms_key(doc_id))
        if raw is None:
            return False
        for field, length, terms in json.loads(raw):
            stats.field(field, -1, -length)
            for term in terms:
                ov.put(K.posting_key(field, term, doc_id), None)
                stats.term(field, term, -1)
        ov.put(K.doc_terms_key(doc_id), None)
        ov.put(K.doc_key(doc_id), None)
        stats.docs -= 1
        return True

    def _add_doc(self, ov: _Overlay, stats: "_StatsDelta", doc: ShardDoc) -> None:
        indexed = []
        doc_id = doc.doc_id
        for field, length, postings in doc.fields:
            stats.field(field, 1, length)
            for term, positions in postings.items():
                ov.put(K.posting_key(field, term, doc_id), encode_posting(len(positions), length, positions))
                stats.term(field, term, 1)
            indexed.append([field, length, sorted(postings)])
        ov.put(K.doc_terms_key(doc_id), json.dumps(indexed, separators=(",", ":")).encode())
        ov.put(K.doc_key(doc_id), doc.stored)
        stats.docs += 1

    # ---------------------------------------------------------- change log
    def _log(self):
        """(log key, opstamp, data keys) of the change log, oldest first."""
        for log_key, value in self.kv.scan(K.CHANGE_LOG, K.upper_bound(K.CHANGE_LOG)):
            yield log_key, K.split_change_log_key(log_key)[0], decode_key_list(value)

    def collect_changes(self, limit: int) -> tuple[list[tuple[bytes, bytes | None]], list[bytes]]:
        """Oldest change-log entries (whole opstamps, about `limit` keys) and the CURRENT
        value of each key they name, read from the store (never a cache): (entries, log keys).

        A value newer than its log entry is fine: the newer write has its own
        log entry, which will be drained (and written again) later.
        """
        log_keys, data_keys, seen = [], [], set()
        for log_key, _, keys in self._log():
            if log_keys and len(data_keys) + len(keys) > limit:
                break
            log_keys.append(log_key)
            for key in keys:
                if key not in seen:
                    seen.add(key)
                    data_keys.append(key)
        values = self.kv.multi_get(data_keys)
        return list(zip(data_keys, values)), log_keys

    def ack_changes(self, log_keys: list[bytes]) -> None:
        """Clear exactly the drained log entries; a key dirtied again since keeps its newer entry."""
        if log_keys:
            self.kv.write({key: None for key in log_keys})

    def persisted_upto(self) -> int:
        """Highest opstamp whose every change is persisted."""
        for log_key, _ in self.kv.scan(K.CHANGE_LOG, K.upper_bound(K.CHANGE_LOG)):
            return K.split_change_log_key(log_key)[0] - 1
        return self.last_opstamp

    def pending_changes(self) -> int:
        """Keys written but not yet persisted (dirty terms, documents and statistics)."""
        return sum(len(keys) for _, _, keys in self._log())

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
        self.kv.write({K.LAST_OPSTAMP: encode_u64(self.last_opstamp)})

    def is_empty(self) -> bool:
        for _ in self.kv.scan(b"", K.INTERNAL):
            return False
        return True

    # ---------------------------------------------------------------- reads
    def doc_count(self) -> int:
        return decode_u64(self.kv.get(K.DOC_COUNT))

    def get_document(self, doc_id: str) -> bytes | None:
        return self.kv.get(K.doc_key(doc_id))

    def get_documents(self, doc_ids: list[str]) -> list[bytes | None]:
        return self.kv.multi_get([K.doc_key(d) for d in doc_ids])

    def field_stats(self, fields: list[str]) -> dict[str, tuple[int, int]]:
        """field -> (documents having it, total length)."""
        values = self.kv.multi_get([K.field_stats_key(f) for f in fields])
        return {f: decode_field_stats(v)[:2] for f, v in zip(fields, values)}

    def doc_freqs(self, pairs: list[tuple[str, str]]) -> list[int]:
        values = self.kv.multi_get([K.doc_freq_key(f, t) for f, t in pairs])
        return [decode_u64(v) for v in values]

    def expand_prefix(self, field: str, prefix: str, limit: int) -> list[str]:
        """First `limit` terms of `field` starting with `prefix`, in byte order."""
        start = K.doc_freq_prefix(field, prefix)
        head = len(K.doc_freq_prefix(field))
        out = []
        for key, _ in self.kv.scan(start, K.upper_bound(start)):
            out.append(key[head:].decode())
            if len(out) >= limit:
                break
        return out

    def postings(self, field: str, term: str) -> Iterator[tuple[str, bytes]]:
        """(doc id, encoded posting) for one term, in doc-id byte order."""
        prefix = K.term_prefix(field, term)
        head = len(prefix)
        for key, value in self.kv.scan(prefix, K.upper_bound(prefix)):
            yield key[head:].decode(), value

    def fields(self) -> list[str]:
        return [k[1:].decode() for k, _ in self.kv.scan(K.FIELD_STATS, K.upper_bound(K.FIELD_STATS))]

    def terms(self, field: str) -> list[str]:
        prefix = K.doc_freq_prefix(field)
        return [k[len(prefix):].decode() for k, _ in self.kv.scan(prefix, K.upper_bound(prefix))]

    def data_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every mirrored key and value (for verify)."""
        yield from self.kv.scan(b"", K.INTERNAL)
