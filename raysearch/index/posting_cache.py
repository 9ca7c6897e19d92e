"""The shard's cache of decoded posting lists (numpy arrays), bounded by postings held."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable


class PostingArrays(tuple):
    """(doc numbers, tfs, field lengths) of one posting list, as numpy arrays, with the
    list's largest tf and smallest field length taken once when it is read: they bound what
    one posting can add to a score (search/executor.py's pruning), and a pass over a common
    term's list per query to find them again was a tenth of a pruned query's time."""

    def __new__(cls, docs, tfs, lengths):
        self = super().__new__(cls, (docs, tfs, lengths))
        self.max_tf = float(tfs.max()) if len(tfs) else 0.0
        self.min_dl = float(lengths.min()) if len(lengths) else 0.0
        return self


# At most this many lists a write dropped are remembered for a rewarm (`take_dropped`)
REWARM_MAX_LISTS = 4096


class PostingCache:
    """LRU of posting arrays, bounded by the number of postings held.

    Thread-safe: the shard actor runs queries on several threads while one applies.
    Every write bumps `generation` and drops the lists it touched, under the lock; a
    list read from RocksDB is cached only if no write happened since its read began,
    checked under the same lock (else a list read before a write could be cached after
    the write dropped it, and hide the write's documents from every later query).

    The lists a write dropped are remembered (the latest REWARM_MAX_LISTS), so that the
    shard can read them again once it is idle (ShardIndex.rewarm), as Lucene warms a new
    reader after a refresh: otherwise the first query of each hot term after a bulk
    decodes its whole list (at 511k documents a shard, ~1,000 blocks of a common term)."""

    def __init__(self, max_postings: int):
        self.max_postings = max_postings
        self.size = 0
        self.generation = 0
        self._items: OrderedDict = OrderedDict()
        self._dropped: OrderedDict = OrderedDict()  # keys of hot lists a write made stale
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

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
            self._evict()

    def resize(self, max_postings: int) -> None:
        """A new bound; lists beyond it go, least recently used first."""
        with self._lock:
            self.max_postings = max_postings
            self._evict()

    def invalidate(self, keys: Iterable[bytes] | None = None) -> None:
        """After a write: drop these lists (None: all of them)."""
        with self._lock:
            self.generation += 1
            if keys is None:  # the data is another (a restore): nothing of it was hot
                self._items.clear()
                self._dropped.clear()
                self.size = 0
            elif self._items:
                # The few cached lists among a batch's ~9,000 keys, found by a set operation in C
                for key in self._items.keys() & keys:
                    self._pop(key)
                    self._dropped[key] = None
                    self._dropped.move_to_end(key)
                while len(self._dropped) > REWARM_MAX_LISTS:
                    self._dropped.popitem(last=False)

    def take_dropped(self, limit: int) -> list:
        """Up to `limit` keys of lists a write dropped, the latest first, forgotten here."""
        with self._lock:
            out = []
            while self._dropped and len(out) < limit:
                out.append(self._dropped.popitem(last=True)[0])
            return out

    def dropped_count(self) -> int:
        with self._lock:
            return len(self._dropped)

    def _evict(self) -> None:
        """Least recently used lists out until the bound holds (under the lock)."""
        while self.size > self.max_postings and self._items:
            _, old = self._items.popitem(last=False)
            self.size -= len(old[0])

    def _pop(self, key) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.size -= len(item[0])
