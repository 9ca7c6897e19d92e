"""A shard's change log: one entry per applied batch (opstamp), holding every key and value
the batch wrote, columnar -- the MongoDB chunk payload already. Written in the batch's own
atomic write (index/shard_index.py); the PersistenceActor drains it oldest first and
acknowledges exactly what it wrote to MongoDB.

What is pending is kept in memory (`sizes`: opstamp -> keys it logged), so watermarks and
backlog sizes never need a scan of the log's key range (full of tombstones once drained).
"""

from __future__ import annotations

from typing import Iterator

from raysearch.index import keys as K
from raysearch.index.encoding import columnar_count, columnar_weights, decode_entries, split_columnar
from raysearch.storage.kv import KV


class ChangeLog:
    def __init__(self, kv: KV):
        self.kv = kv
        self.sizes: dict[int, int] = {op: columnar_count(blob) for _, op, blob in self._scan()}
        # opstamp -> bytes of earlier values its entries supersede, for the compaction trigger
        # (in memory: after a restart, batches not yet drained count none, which only delays it)
        self.garbage: dict[int, int] = {}

    def _scan(self) -> Iterator[tuple[bytes, int, bytes]]:
        """(log key, opstamp, columnar blob) of the whole log, oldest first (at open only)."""
        for log_key, value in self.kv.scan(K.CHANGE_LOG, K.upper_bound(K.CHANGE_LOG)):
            yield log_key, K.split_change_log_key(log_key)[0], value

    def register(self, opstamp: int, keys: int, garbage: int) -> None:
        """Before the batch's write (and before last_opstamp moves), so a concurrent
        persisted_upto can never count the batch as persisted."""
        self.sizes[opstamp] = keys
        if garbage:
            self.garbage[opstamp] = garbage

    def unregister(self, opstamp: int) -> None:
        """The batch's write failed: it logged nothing."""
        self.sizes.pop(opstamp, None)
        self.garbage.pop(opstamp, None)

    def oldest(self, limit: int) -> tuple[list[bytes], list[bytes]]:
        """(log keys, blobs) of the oldest whole opstamps, about `limit` entries: point reads of
        the opstamps known to be pending, not a scan of the log's key range (once drained, that
        range is full of deletion tombstones; scanning past them cost ~33 ms per idle cycle)."""
        log_keys, blobs, count = [], [], 0
        for opstamp in sorted(list(self.sizes)):  # a copy: applies on other threads add entries
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
        """The oldest entries (whole opstamps, about `limit` keys) as (key, value) pairs in
        write order: (entries, log keys)."""
        log_keys, blobs = self.oldest(limit)
        return [e for blob in blobs for e in decode_entries(blob)], log_keys

    def collect_chunks(self, limit: int, chunk_entries_max: int) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
        """As collect_changes, as MongoDB chunk payloads (entries, postings, blob) cut from the
        log entries as they are: at most `chunk_entries_max` postings each (a posting block
        counts its postings, any other entry 1)."""
        log_keys, blobs = self.oldest(limit)
        chunks = [c for blob in blobs
                  for c in split_columnar(blob, chunk_entries_max, weights=columnar_weights(blob, K.POSTING[0]))]
        return chunks, log_keys

    def garbage_of(self, log_keys: list[bytes]) -> int:
        """Bytes of earlier values that the entries of these log keys supersede."""
        return sum(self.garbage.get(K.split_change_log_key(key)[0], 0) for key in log_keys)

    def ack(self, log_keys: list[bytes]) -> None:
        """Clear exactly the drained entries; a key dirtied again since keeps its newer entry."""
        if log_keys:
            self.kv.write({key: None for key in log_keys})
            for key in log_keys:
                self.unregister(K.split_change_log_key(key)[0])

    def persisted_upto(self, last_opstamp: int) -> int:
        """Highest opstamp whose every change is persisted."""
        stamps = list(self.sizes)  # a copy: applies on other threads add entries
        return min(stamps) - 1 if stamps else last_opstamp

    def pending(self) -> int:
        """Keys written but not yet persisted (dirty terms and documents)."""
        return sum(list(self.sizes.values()))
